"""The facereg dashboard: `streamlit run dashboard/app.py` (see the README).

Every run first checks the session. Without a valid one, the navigation holds the sign-in page alone,
so no page URL runs anything else; with one, the pages of dashboard/views (a folder Streamlit does not
discover by itself), each of which checks the session again (`require_user`).
"""

from __future__ import annotations

import streamlit as st

from dashboard.navigation import PAGES
from dashboard.session import context, sidebar, signed_in_user
from dashboard.signin import signin_page
from services.storage.private_files import secure_process

secure_process()  # umask 077, and the data folder private (walked once per process)
st.set_page_config(page_title="facereg", page_icon=":material/face:", layout="wide")
user = signed_in_user()
if user is None:
    # Every page URL answers with the sign-in form (no "page not found" in the way); after sign-in the
    # same URL opens the real page.
    gate = [st.Page(signin_page, title="Sign in", icon=":material/login:", default=True)]
    gate += [st.Page(signin_page, title="Sign in", url_path=p.url_path) for p in PAGES]
    st.navigation(gate, position="hidden").run()
else:
    context()
    sidebar(user)
    st.navigation(
        [st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path, default=n == 0) for n, p in enumerate(PAGES)]
    ).run()
