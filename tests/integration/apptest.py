"""Helpers for the dashboard's AppTest tests: the environment a dashboard process reads, a signed-in
session, and the text a page shows."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streamlit.testing.v1 import AppTest

from dashboard.auth import User, credential_stamp
from dashboard.session import SEEN_KEY, STAMP_KEY, USER_KEY
from services.config import REPO_ROOT, Settings, get_settings
from tests.integration.conftest import project_env

APP = REPO_ROOT / "dashboard" / "app.py"


@contextmanager
def dashboard_environ(settings: Settings, users: Path) -> Iterator[None]:
    """The FACEREG_* environment of a dashboard on `settings` with the users file `users`, restored after."""
    env = project_env(settings, FACEREG_DASHBOARD_USERS_FILE=str(users))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


def start(user: User | None, page: str | None = None, *, check: bool = True) -> AppTest:
    """The app in a new browser session: signed out, or signed in as `user` (who must be in the users file)."""
    at = AppTest.from_file(str(APP), default_timeout=120)
    if user is not None:
        at.session_state[USER_KEY] = user
        at.session_state[STAMP_KEY] = credential_stamp(get_settings().users_file, user.name)
        at.session_state[SEEN_KEY] = time.time()
    at.run()
    if page:
        at.switch_page(f"views/{page}.py").run()
    if check:
        assert not at.exception, [e.value for e in at.exception]
    return at


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    return at.button[0].click().run()


def texts(at: AppTest) -> str:
    kinds = (at.title, at.header, at.subheader, at.markdown, at.caption, at.success, at.warning, at.error, at.info)
    return "\n".join(str(e.value) for kind in kinds for e in kind)
