"""Acceptance 5 of issue 12 in a real Chromium: while `scripts/realtime_attendance.py` plays a generated video
(real LFW faces) at its frame rate, the Cameras page shows the camera running and its live annotated frame;
after the run the Attendance page lists the run's events with each person's arrival and departure."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from dashboard.auth import set_user
from model.pipeline import FacePipeline
from scripts.make_test_video import VideoOptions, make_video
from services.config import REPO_ROOT, Settings
from services.context import open_context
from services.registry.enrollment import ImageInput, enroll
from services.registry.persons import PersonInput
from tests.e2e.browser import CHROMIUM, dashboard_server, go, require_chromium, see, shot, sign_in
from tests.integration.conftest import isolated_settings, project_env

GALLERY = "frontdoor"
CAMERA = "front-door"
PASSWORD = "realtime-admin-password"


@pytest.fixture
def camera_run(infra: Settings, tmp_path: Path, mfn: FacePipeline, lfw: Path) -> Iterator[tuple[str, list[str]]]:
    """A dashboard on a gallery of the video's enrolled people, and the realtime script playing the video at
    25 FPS (about 20 s). Yields the dashboard's URL and the enrolled names."""
    require_chromium()
    settings = isolated_settings(infra, tmp_path, model="mobilefacenet", gallery=GALLERY)
    truth = make_video(tmp_path / "clip", lfw, VideoOptions(seconds=20.0, enrolled=2, strangers=1, cooldown_s=6.0))
    ctx = open_context(settings, mfn)
    names = []
    for person in (p for p in truth.people if p.enrolled):
        images = [ImageInput(Path(p).name, Path(p).read_bytes()) for p in person.enroll_images]
        assert enroll(ctx, PersonInput(person.display_name, person.name), images, GALLERY).person_id
        names.append(person.display_name)
    users = settings.data_dir / "users.json"
    set_user(users, "admin", "admin", PASSWORD)
    with dashboard_server(settings, users, "realtime-dashboard.log") as url:
        env = {**os.environ, **project_env(settings, FACEREG_TORCH_THREADS="1")}
        argv = [sys.executable, "scripts/realtime_attendance.py", str(tmp_path / "clip" / "video.mp4")]
        argv += ["--name", CAMERA, "--gallery", GALLERY, "--inline", "--realtime", "--cooldown", "6"]
        script = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            yield url, names
        finally:
            try:  # the video ends by itself (a SIGTERM while the script exits would kill it before its handler)
                _, err = script.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                script.terminate()
                _, err = script.communicate(timeout=60)
            assert script.returncode == 0, err.decode()[-3000:]


def test_the_dashboard_shows_the_camera_live_and_then_its_arrivals(camera_run: tuple[str, list[str]]) -> None:
    url, names = camera_run
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        pg = browser.new_context(viewport={"width": 1440, "height": 1100}).new_page()
        pg.set_default_timeout(60_000)
        pg.goto(f"{url}/cameras")
        sign_in(pg, "admin", PASSWORD, lands_on="Cameras")
        see(pg, "running", timeout=90_000)  # the script's first heartbeat: model loaded, video playing
        pg.locator('[data-testid="stImage"] img').first.wait_for(timeout=30_000)
        pg.get_by_text(CAMERA).first.wait_for(state="attached")  # a data-grid cell
        shot(pg, "realtime_cameras_live")
        see(pg, "stopped", timeout=120_000)  # the video played to its end: the script stopped cleanly
        go(pg, "Attendance")
        see(pg, "Arrivals and departures")
        for name in names:
            pg.get_by_text(name).first.wait_for(state="attached")  # data-grid cells are drawn on a canvas
        shot(pg, "realtime_attendance_after")
        browser.close()
