"""Acceptance of the sign-in gate in a real headless Chromium: a freshly started dashboard process that
nobody has signed in to is asked directly for `/` and every page URL of the app's own page table; each
shows the sign-in form alone and nothing of the data. After sign-in as a viewer the pages open under the
same URLs and the administrator's actions stay refused; after sign-out the data is gone again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from dashboard.auth import set_user
from dashboard.navigation import PAGES
from model.pipeline import FacePipeline
from services.attendance.cameras import Heartbeat, publish, stop
from services.config import Settings
from services.context import ServiceContext, open_context
from services.registry.enrollment import ImageInput, enroll
from services.registry.persons import PersonInput
from tests.conftest import machine_now
from tests.e2e.browser import CHROMIUM, dashboard_server, go, require_chromium, see, settle, shot, sign_in, upload
from tests.integration.conftest import isolated_settings

GALLERY = "gatecheck"
ENROLLED = "Colin Powell"
VIEWER, VIEWER_PASSWORD = "vera", "vera-password-1"
ADMIN_PASSWORD = "gate-admin-password"
# What a signed-out browser must never see: the enrolled name, the gallery, the model, counts' labels.
SECRETS = (ENROLLED, GALLERY, "mobilefacenet", "Persons", "Faces")


class Gate(NamedTuple):
    url: str
    users: Path  # its users file
    settings: Settings  # its database and data dir


@pytest.fixture(scope="module")
def fresh_dashboard(
    infra: Settings, tmp_path_factory: pytest.TempPathFactory, mfn: FacePipeline, lfw: Path
) -> Iterator[Gate]:
    """A person enrolled, then a dashboard process started that nobody has signed in to (and no worker, so
    submitted jobs stay queued and their pages keep polling)."""
    require_chromium()
    redis_db5 = infra.redis_url.rsplit("/", 1)[0] + "/5"
    settings = isolated_settings(
        infra, tmp_path_factory.mktemp("gate"), model="mobilefacenet", redis_url=redis_db5, gallery=GALLERY
    )
    photo = lfw / "images" / "Colin_Powell" / "Colin_Powell_0001.jpg"
    result = enroll(open_context(settings, mfn), PersonInput(ENROLLED), [ImageInput(photo.name, photo.read_bytes())])
    assert result.person_id
    users = settings.data_dir / "users.json"
    set_user(users, "admin", "admin", ADMIN_PASSWORD)
    set_user(users, VIEWER, "viewer", VIEWER_PASSWORD)
    with dashboard_server(settings, users, "gate-dashboard.log") as url:
        yield Gate(url, users, settings)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def page_urls(base: str) -> list[str]:
    return [f"{base}/", *(f"{base}/{p.url_path}" for p in PAGES)]


def assert_sign_in_only(pg: Page, where: str) -> None:
    see(pg, "Sign in to continue", timeout=60_000)
    expect(pg.get_by_label("Password", exact=True)).to_have_count(1)  # waits out a rerun in flight
    settle(pg)
    shown = pg.locator("body").inner_text()
    leaked = [s for s in SECRETS if s in shown]
    assert not leaked, f"{where} shows {leaked} before sign-in:\n{shown}"
    assert pg.get_by_test_id("stSidebarNav").count() == 0, f"{where} lists the pages before sign-in"
    assert pg.locator("img").count() == 0, f"{where} shows an image before sign-in"


def test_every_url_of_a_fresh_dashboard_shows_only_the_sign_in_form(fresh_dashboard: Gate, browser: Browser) -> None:
    for n, url in enumerate(page_urls(fresh_dashboard.url)):
        context = browser.new_context(viewport={"width": 1280, "height": 900})  # a new browser, no session
        pg = context.new_page()
        pg.set_default_timeout(60_000)
        pg.goto(url)
        assert_sign_in_only(pg, url)
        if n in (0, 3):
            shot(pg, f"gate_signed_out_{n}")
        context.close()


def test_a_viewer_opens_every_page_and_is_refused_every_admin_action(fresh_dashboard: Gate, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(f"{fresh_dashboard.url}/people")
    sign_in(pg, VIEWER, VIEWER_PASSWORD, lands_on="People")  # the URL asked for opens after sign-in
    assert pg.url.endswith("/people")
    refusals = {
        "enroll": "Only an administrator can enroll people",
        "evaluation": "Only an administrator can run evaluations",
        "duplicates": "an administrator decides",
    }
    for spec in PAGES[1:]:
        go(pg, spec.title)
        assert pg.url.rstrip("/").endswith(f"/{spec.url_path}"), (spec.title, pg.url)
        assert pg.get_by_test_id("stException").count() == 0, spec.title
        if spec.url_path in refusals:
            see(pg, refusals[spec.url_path], timeout=30_000)
    go(pg, "People")
    pg.get_by_text(ENROLLED).first.wait_for(state="attached")  # a data-grid cell (drawn on a canvas)
    assert pg.get_by_role("button", name="Delete permanently").count() == 0
    shot(pg, "gate_viewer_people")
    pg.get_by_role("button", name="Sign out").click()
    assert_sign_in_only(pg, "after sign-out")
    context.close()


def test_a_page_polling_a_job_signs_out_when_the_password_changes(
    fresh_dashboard: Gate, browser: Browser, lfw: Path
) -> None:
    """A queued job's progress polls every second without a click; the session check runs there too."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(f"{fresh_dashboard.url}/enroll")
    sign_in(pg, "admin", ADMIN_PASSWORD, lands_on="Enroll a person")
    upload(pg, 0, [lfw / "images" / "Colin_Powell" / "Colin_Powell_0002.jpg"])
    see(pg, "No worker is online", timeout=60_000)  # the photo check is queued; its progress polls
    set_user(fresh_dashboard.users, "admin", "admin", "a-new-admin-password", replace=True)
    assert_sign_in_only(pg, "a polling page after the password changed")
    see(pg, "Your account was changed or removed", timeout=10_000)
    shot(pg, "gate_revoked_while_polling")
    context.close()


class Camera(threading.Thread):
    """The publishing side of a running realtime source: its heartbeat and annotated frame every half second,
    stamped with the machine's clock (the dashboard process reads that one, whatever `--clock` says here)."""

    def __init__(self, ctx: ServiceContext, beat: Heartbeat, frame: bytes) -> None:
        super().__init__(daemon=True)
        self.ctx, self.beat, self.frame = ctx, beat, frame
        self.halt = threading.Event()

    def run(self) -> None:
        while True:
            now = machine_now()
            publish(self.ctx, replace(self.beat, last_frame_at=now), now, self.frame)
            if self.halt.wait(0.5):
                return


def door_frame(photo: Path) -> bytes:
    """A 640x480 camera frame: an LFW photo on a grey-blue gradient, its face boxed and named, the FPS
    written in the corner, as the realtime script annotates it."""
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[:, :, 0] = np.linspace(60, 140, 640, dtype=np.uint8)  # a horizontal gradient, not a flat fill
    face = cv2.imread(str(photo))
    assert face is not None and face.shape == (250, 250, 3), photo
    frame[110:360, 300:550] = face
    cv2.rectangle(frame, (370, 180), (480, 300), (67, 160, 46), 2)
    cv2.rectangle(frame, (369, 156), (540, 180), (67, 160, 46), -1)
    cv2.putText(frame, "Colin Powell 0.71", (374, 174), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.putText(frame, "24.8 FPS", (12, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return data.tobytes()


def live_image_loaded(pg: Page) -> bool:
    return bool(
        pg.evaluate(
            "() => [...document.querySelectorAll('[data-testid=\"stImage\"] img')]"
            ".some(i => i.complete && i.naturalWidth === 640)"
        )
    )


def test_the_cameras_page_shows_a_live_camera_only_after_sign_in(
    fresh_dashboard: Gate, browser: Browser, lfw: Path
) -> None:
    ctx = open_context(fresh_dashboard.settings)
    beat = Heartbeat("door-cam", "running", 24.8, machine_now(), 0, 0, 1200, 3, "run-e2e", "gatehost", 4242)
    camera = Camera(ctx, beat, door_frame(lfw / "images" / "Colin_Powell" / "Colin_Powell_0004.jpg"))
    camera.start()
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    try:
        pg.goto(f"{fresh_dashboard.url}/cameras")
        assert_sign_in_only(pg, "/cameras while a camera publishes")
        assert "door-cam" not in pg.locator("body").inner_text()
        sign_in(pg, VIEWER, VIEWER_PASSWORD, lands_on="Cameras")
        pg.get_by_text("running 24.8 FPS, 0 faces").first.wait_for(state="attached")  # a data-grid cell
        pg.wait_for_function("() => document.querySelector('[data-testid=\"stImage\"] img')?.naturalWidth === 640")
        caption = pg.get_by_text("door-cam ·").first.inner_text()
        camera.beat = replace(beat, faces_in_view=1)  # the page refreshes by itself: no click from here on
        pg.get_by_text("running 24.8 FPS, 1 face").first.wait_for(state="attached", timeout=15_000)
        expect(pg.get_by_text("door-cam ·").first).not_to_have_text(caption, timeout=15_000)  # a newer frame
        assert live_image_loaded(pg)
        shot(pg, "cameras_live")
        camera.halt.set()
        camera.join()
        assert stop(ctx, "door-cam", "run-e2e", machine_now())  # a clean stop: the frame goes
        pg.get_by_text("stopped at").first.wait_for(state="attached", timeout=15_000)
        expect(pg.get_by_test_id("stImage")).to_have_count(0, timeout=15_000)
        see(pg, "door-cam: no live frame (stopped at")
        shot(pg, "cameras_stopped")
    finally:
        camera.halt.set()
        context.close()
