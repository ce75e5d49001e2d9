"""The dashboard's page table: one file a page under dashboard/views, in menu order (no Streamlit calls here,
so tests can list the page URLs without running the app)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

VIEWS = Path(__file__).parent / "views"


@dataclass(frozen=True, slots=True)
class PageSpec:
    file: str
    title: str
    icon: str

    @property
    def path(self) -> Path:
        return VIEWS / self.file

    @property
    def url_path(self) -> str:
        """The URL path Streamlit serves the page under (the file name without `.py`)."""
        return Path(self.file).stem


PAGES: tuple[PageSpec, ...] = (
    PageSpec("overview.py", "Overview", ":material/dashboard:"),
    PageSpec("enroll.py", "Enroll", ":material/person_add:"),
    PageSpec("people.py", "People", ":material/groups:"),
    PageSpec("search.py", "Search & verify", ":material/person_search:"),
    PageSpec("evaluation.py", "Gallery evaluation", ":material/leaderboard:"),
    PageSpec("duplicates.py", "Duplicates", ":material/difference:"),
    PageSpec("attendance.py", "Attendance", ":material/event_available:"),
    PageSpec("cameras.py", "Cameras", ":material/videocam:"),
    PageSpec("settings.py", "Settings", ":material/settings:"),
)
