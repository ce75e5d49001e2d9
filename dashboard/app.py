"""The facereg dashboard: `streamlit run dashboard/app.py` (see the README).

Sign-in first; then one page per file under dashboard/views, in this order.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard.session import context, login_gate, sidebar

HERE = Path(__file__).parent
PAGES = [
    ("overview.py", "Overview", ":material/dashboard:"),
    ("enroll.py", "Enroll", ":material/person_add:"),
    ("people.py", "People", ":material/groups:"),
    ("search.py", "Search & verify", ":material/person_search:"),
    ("evaluation.py", "Gallery evaluation", ":material/leaderboard:"),
    ("duplicates.py", "Duplicates", ":material/difference:"),
    ("attendance.py", "Attendance", ":material/event_available:"),
    ("settings.py", "Settings", ":material/settings:"),
]

st.set_page_config(page_title="facereg", page_icon=":material/face:", layout="wide")
user = login_gate()
context()
sidebar(user)
navigation = st.navigation(
    [st.Page(HERE / "views" / f, title=t, icon=i, default=(n == 0)) for n, (f, t, i) in enumerate(PAGES)]
)
navigation.run()
