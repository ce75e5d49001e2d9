"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against the real app, a real
worker and the local servers: sign in, enroll two LFW people, search a held-out photo and a stranger,
resolve a planted duplicate, see an attendance event and export the CSV. Screenshots of every page go
to artifacts/e2e/."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from dashboard.auth import set_user
from model.pipeline import FacePipeline
from scripts.supervisor import launcher
from services.config import Settings
from services.context import ServiceContext, open_context
from services.registry.enrollment import ImageInput, enroll
from services.registry.persons import PersonInput
from tests.e2e.browser import (
    CHROMIUM,
    SHOTS,
    dashboard_server,
    go,
    require_chromium,
    see,
    settle,
    shot,
    sign_in,
    upload,
)
from tests.integration.conftest import isolated_settings
from workers import payloads
from workers.client import TaskClient

PASSWORD = "e2e-admin-password"
Img = Callable[[str, int], Path]


@pytest.fixture(scope="module")
def served(infra: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    """A worker and `streamlit run dashboard/app.py` on free ports, on a database of their own."""
    require_chromium()
    redis_db4 = infra.redis_url.rsplit("/", 1)[0] + "/4"
    settings = isolated_settings(infra, tmp_path_factory.mktemp("e2e"), model="mobilefacenet", redis_url=redis_db4)
    users = settings.data_dir / "users.json"
    set_user(users, "admin", "admin", PASSWORD)
    workers = launcher.start_workers(settings, 1, settings.data_dir / "logs", name="e2e")
    try:
        with dashboard_server(settings, users) as url:
            assert launcher.wait_online(settings, 1, timeout=180) == 1, "the worker did not come online"
            yield settings, url
    finally:
        launcher.stop_workers(workers)


@pytest.fixture(scope="module")
def ctx(served: tuple[Settings, str], mfn: FacePipeline) -> ServiceContext:
    return open_context(served[0], mfn)


@pytest.fixture(scope="module")
def page(served: tuple[Settings, str]) -> Iterator[Page]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        pg = browser.new_page(viewport={"width": 1440, "height": 1000})
        pg.set_default_timeout(60_000)
        try:
            yield pg
        finally:
            SHOTS.mkdir(parents=True, exist_ok=True)
            pg.screenshot(path=str(SHOTS / "last.png"), full_page=True)  # what the page showed at the end
            browser.close()


def click_until(pg: Page, target: Locator, shown: str) -> None:
    """Click, then wait for `shown`; a click that lands while a rerun replaces the element is lost,
    so click again (every action here is safe to repeat)."""
    for _ in range(3):
        settle(pg)
        if target.count() and target.first.is_visible():
            target.click()
        try:
            pg.get_by_text(shown, exact=False).first.wait_for(timeout=20_000)
            return
        except PlaywrightTimeout:
            continue
    see(pg, shown)


def enroll_in_browser(pg: Page, name: str, photos: list[Path]) -> None:
    go(pg, "Enroll")
    pg.get_by_label("Name", exact=True).fill(name)
    pg.get_by_text("The person has given consent to be enrolled").click()
    upload(pg, 0, photos)
    pg.get_by_text("Good photo").nth(len(photos) - 1).wait_for(timeout=240_000)
    settle(pg)
    click_until(pg, pg.get_by_role("button", name="Enroll", exact=True), "Enrolled new person")
    see(pg, f"Enrolled new person {name}: {len(photos)} photo(s) enrolled.")
    shot(pg, f"enroll_{name.replace(' ', '_')}")
    pg.get_by_role("button", name="Enroll another person").click()
    pg.get_by_label("Name", exact=True).wait_for()
    settle(pg)


def test_the_dashboard_end_to_end(
    served: tuple[Settings, str], ctx: ServiceContext, page: Page, lfw_image: Img, tmp_path: Path
) -> None:
    pg = page
    _, url = served
    pg.goto(url)
    see(pg, "Sign in to continue")
    shot(pg, "01_sign_in")
    sign_in(pg, "admin", PASSWORD)
    see(pg, "worker(s) online")
    shot(pg, "02_overview")

    enroll_in_browser(pg, "Tony Blair", [lfw_image("Tony_Blair", 1), lfw_image("Tony_Blair", 2)])
    enroll_in_browser(pg, "Colin Powell", [lfw_image("Colin_Powell", 1), lfw_image("Colin_Powell", 2)])
    assert ctx.db.persons.count_documents({}) == 2 and ctx.db.faces.count_documents({}) == 4

    go(pg, "Search & verify")
    upload(pg, 0, [lfw_image("Tony_Blair", 9)])
    see(pg, "Face 1: Tony Blair")
    shot(pg, "03_search_known")
    upload(pg, 0, [lfw_image("Gloria_Macapagal_Arroyo", 1)])
    see(pg, "Face 1: unknown")
    shot(pg, "04_search_unknown")

    # A planted duplicate: Colin Powell enrolled a second time under another name.
    enroll(
        ctx,
        PersonInput("C. Powell (second record)"),
        [ImageInput("cp3.jpg", lfw_image("Colin_Powell", 3).read_bytes())],
    )
    go(pg, "Duplicates")
    click_until(pg, pg.get_by_role("button", name="Scan the gallery"), "Scan finished")
    see(pg, "Scan finished: 1 new candidate pair(s).")
    see(pg, "Open candidates: 1")
    shot(pg, "05_duplicates_open")
    pg.get_by_text("Same person: merge into Colin Powell").click()
    expect(pg.get_by_role("radio", name="Same person: merge into Colin Powell")).to_be_checked()
    click_until(pg, pg.get_by_role("button", name="Apply"), "Open candidates: 0")
    see(pg, "Open candidates: 0")
    shot(pg, "06_duplicates_resolved")
    assert ctx.db.persons.count_documents({}) == 2
    assert ctx.db.dedup_reviews.find_one({})["status"] == "merged"

    # A camera frame through the queue, as scripts/realtime_attendance.py sends it.
    with TaskClient(served[0]) as queue:
        tid = queue.submit("process_frames", [payloads.from_path(lfw_image("Tony_Blair", 10))], "gate-e2e", "default")
        done = queue.wait([tid], timeout=180)[tid]
    assert done.state == "SUCCESS", done.error
    assert done.result[0]["faces"][0]["identity"] == "Tony Blair"
    go(pg, "Attendance")
    see(pg, "1 event(s)")
    shot(pg, "07_attendance")
    with pg.expect_download() as download:
        pg.get_by_role("button", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [(r["display_name"], r["events"]) for r in rows] == [("Tony Blair", "1")]

    # A small Top-K evaluation run from the page, to look at its charts and failure table.
    folder = tmp_path / "people"
    lfw_root = lfw_image("Tony_Blair", 1).parents[1]
    for person in sorted(p.name for p in lfw_root.iterdir() if len(list(p.glob("*.jpg"))) >= 4)[::25][:20]:
        (folder / person).mkdir(parents=True)
        for img in sorted((lfw_root / person).glob("*.jpg"))[:4]:
            (folder / person / img.name).symlink_to(img)
    go(pg, "Gallery evaluation")
    pg.get_by_label("Folder of <person>/<images> on the server", exact=True).fill(str(folder))
    pg.get_by_label("Evaluation gallery", exact=True).fill("eval-e2e")
    pg.get_by_label("Evaluation gallery", exact=True).press("Enter")
    settle(pg)
    click_until(pg, pg.get_by_role("button", name="Run", exact=True), "Evaluating")
    see(pg, "Top-1 failures")
    shot(pg, "08_gallery_evaluation")

    for n, title in enumerate(("People", "Settings"), 9):
        go(pg, title)
        shot(pg, f"{n:02d}_{title.lower().replace(' ', '_')}")
