"""What the browser tests share: Debian's Chromium, a `streamlit run` dashboard process on a free port,
and waits on Streamlit's own script state (never fixed sleeps)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from scripts.supervisor.probes import http_ok
from services.config import REPO_ROOT, Settings
from tests.conftest import free_port
from tests.integration.conftest import project_env

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO_ROOT / "artifacts" / "e2e"
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def require_chromium() -> None:
    if not CHROMIUM.is_file():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing (scripts/install_system_deps.sh installs it)")
        pytest.skip("Debian chromium is not installed")


@contextmanager
def dashboard_server(settings: Settings, users: Path, log_name: str = "dashboard.log") -> Iterator[str]:
    """`streamlit run dashboard/app.py` on a free port with the project's shipped config; yields its URL."""
    port = free_port()
    env = {**os.environ, **project_env(settings, FACEREG_DASHBOARD_USERS_FILE=str(users))}
    (settings.data_dir / "logs").mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(port)]
    with (settings.data_dir / "logs" / log_name).open("wb") as log:
        server = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while not http_ok("127.0.0.1", port, "/_stcore/health"):
                assert server.poll() is None and time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.5)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(10)


def settle(pg: Page) -> None:
    """Wait until Streamlit has finished its script run."""
    pg.wait_for_selector(IDLE, state="attached")


def shot(pg: Page, name: str) -> None:
    settle(pg)
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def see(pg: Page, text: str, timeout: float = 240_000) -> None:
    pg.get_by_text(text, exact=False).first.wait_for(state="visible", timeout=timeout)


def go(pg: Page, title: str) -> None:
    """Open a page from the sidebar; a click that lands during a script rerun is lost, so retry it."""
    heading = pg.get_by_role("heading", name=title).first
    for _ in range(3):
        pg.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
        try:
            heading.wait_for(timeout=20_000)
            break
        except PlaywrightTimeout:
            continue
    heading.wait_for()
    settle(pg)


def sign_in(pg: Page, name: str, password: str, lands_on: str = "Overview") -> None:
    """Sign in on the form the page shows; the page asked for (`lands_on`) opens."""
    see(pg, "Sign in to continue")
    settle(pg)
    pg.get_by_label("User name", exact=True).fill(name)
    pg.get_by_label("Password", exact=True).fill(password)
    pg.get_by_role("button", name="Sign in").click()
    pg.get_by_role("heading", name=lands_on).first.wait_for()
    settle(pg)


def upload(pg: Page, index: int, paths: list[Path]) -> None:
    """Upload into the index-th file uploader. Files set while a rerun replaces the input are lost, so
    wait until the uploader shows a chip (its size, "7.8KB") per file, and retry."""
    inputs = pg.locator('[data-testid="stFileUploader"] input[type="file"]')
    uploader = pg.get_by_test_id("stFileUploader").nth(index)
    chips = uploader.get_by_text(re.compile(r"^[\d.]+\s?[KM]?B$"))
    last = paths[-1].name[-9:]  # long names are shortened in the middle
    for _ in range(5):
        settle(pg)
        inputs.nth(index).set_input_files([str(p) for p in paths])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if chips.count() >= len(paths) and last in uploader.inner_text():
                return
            pg.wait_for_timeout(250)
    raise AssertionError(f"the uploader did not take {[p.name for p in paths]}")
