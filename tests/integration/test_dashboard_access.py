"""Access to the dashboard (AppTest on the real MongoDB-protocol server): nothing runs before sign-in,
wrong passwords are throttled across browser sessions and audited, sessions end when idle, on sign-out
and when the user's password changes or the user is removed. Clock moves use time-machine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from streamlit.testing.v1 import AppTest

from dashboard.auth import User, remove_user, set_user
from dashboard.navigation import PAGES, VIEWS
from model.pipeline import FacePipeline
from services.attendance.cameras import Heartbeat, publish
from services.config import Settings
from services.context import ServiceContext, open_context
from services.registry.enrollment import ImageInput, enroll
from services.registry.persons import PersonInput
from services.storage.records import utcnow
from tests.integration.apptest import dashboard_environ, sign_in, start, texts
from tests.integration.conftest import isolated_settings

ADMIN, VIEWER = User("alice", "admin"), User("victor", "viewer")
PASSWORDS = {"alice": "alice-password-1", "victor": "victor-password-1"}
ENROLLED = "Colin Powell"


@pytest.fixture(scope="module")
def access(infra: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = isolated_settings(infra, tmp_path_factory.mktemp("access"), gallery="accessgal")
    users = settings.users_file
    for user in (ADMIN, VIEWER):
        set_user(users, user.name, user.role, PASSWORDS[user.name])
    with dashboard_environ(settings, users):
        yield settings


@pytest.fixture(scope="module")
def ctx(access: Settings, mfn: FacePipeline, lfw: Path) -> ServiceContext:
    ctx = open_context(access, mfn)
    photo = lfw / "images" / "Colin_Powell" / "Colin_Powell_0001.jpg"
    enroll(ctx, PersonInput(ENROLLED), [ImageInput(photo.name, photo.read_bytes())], "accessgal")
    return ctx


def audit_actions(ctx: ServiceContext, subject: str) -> list[str]:
    return [d["action"] for d in ctx.db.audit.find({"subject": subject}, {"action": 1}).sort("time", 1)]


def shows_enrolled(at: AppTest) -> bool:
    return ENROLLED in texts(at) or any(ENROLLED in df.value.to_string() for df in at.dataframe)


def assert_sign_in_only(at: AppTest) -> None:
    shown = texts(at)
    assert [t.value for t in at.title] == ["facereg"], shown
    assert at.text_input(key="login_password") is not None
    assert not at.metric and not at.dataframe and not at.sidebar.selectbox and not at.image
    for secret in (ENROLLED, "accessgal", "mobilefacenet", "Persons"):
        assert secret not in shown


def test_no_page_runs_before_sign_in(ctx: ServiceContext) -> None:
    at = start(None)
    assert_sign_in_only(at)
    for page in PAGES:  # the navigation of a signed-out session holds no page file
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(str(page.path))


def test_every_page_file_run_on_its_own_checks_the_session(ctx: ServiceContext) -> None:
    """Defence in depth: a page file run without app.py (as Streamlit's old pages/ mode did) shows nothing."""
    for page in PAGES:
        at = AppTest.from_file(str(page.path), default_timeout=60).run()
        assert not at.exception, [e.value for e in at.exception]
        assert [w.value for w in at.warning] == ["Sign in to continue."], page.file
        assert not at.title and not at.metric and not at.dataframe and not at.image and not at.markdown


def test_signing_in_opens_the_pages_and_signing_out_closes_them(ctx: ServiceContext) -> None:
    at = sign_in(start(None), "  VICTOR ", PASSWORDS["victor"])  # names are normalised
    assert [t.value for t in at.title] == ["Overview"]
    assert at.session_state["user"] == VIEWER
    at.switch_page("views/people.py").run()
    assert shows_enrolled(at)
    at.sidebar.button(key="logout").click().run()
    assert_sign_in_only(at)
    assert "You are signed out." in texts(at)
    assert audit_actions(ctx, "user:victor")[-2:] == ["signin", "signout"]


def test_a_cameras_live_frame_shows_only_to_a_signed_in_session(ctx: ServiceContext, lfw: Path) -> None:
    frame = (lfw / "images" / "Colin_Powell" / "Colin_Powell_0002.jpg").read_bytes()
    when = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)  # what the page shows is the same whether up or down
    publish(ctx, Heartbeat("door-cam", "running", 25.0, when, 1, 0, 100, 0, "run-1", "gatehost", 1), when, frame)
    at = start(None)
    assert_sign_in_only(at)
    assert "door-cam" not in texts(at)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/cameras.py")
    at = AppTest.from_file(str(VIEWS / "cameras.py"), default_timeout=60).run()  # the page file on its own
    assert [w.value for w in at.warning] == ["Sign in to continue."] and not at.image and not at.dataframe
    at = sign_in(start(None), "victor", PASSWORDS["victor"])
    at.switch_page("views/cameras.py").run()
    assert [t.value for t in at.title] == ["Cameras"] and len(at.image) == 1
    assert list(at.dataframe[0].value["camera"]) == ["door-cam"]
    at.sidebar.button(key="logout").click().run()
    assert_sign_in_only(at)
    assert "door-cam" not in texts(at)


def test_wrong_passwords_over_two_sessions_lock_the_user_until_it_expires(ctx: ServiceContext) -> None:
    first, second = start(None), start(None)
    for _ in range(3):
        sign_in(first, "alice", "not-the-password")
        assert "Wrong user name or password." in texts(first)
    sign_in(second, "alice", "still-not-it")
    sign_in(second, "alice", "still-not-it")  # the fifth failure locks the name
    assert "is locked until" in texts(second)
    sign_in(second, "alice", "still-not-it")  # the sixth is refused without a check
    third = sign_in(start(None), "alice", PASSWORDS["alice"])  # a new session, the right password
    assert "this user name is locked until" in texts(third)
    assert_sign_in_only(third)
    assert audit_actions(ctx, "user:alice") == ["signin_failed"] * 5 + ["signin_locked"] + ["signin_refused"] * 2
    entry = ctx.db.audit.find_one({"subject": "user:alice", "action": "signin_failed"})
    assert entry is not None and entry["details"]["address"] and entry["time"]

    with time_machine.travel(utcnow() + timedelta(minutes=16), tick=True):
        at = sign_in(start(None), "alice", PASSWORDS["alice"])
        assert [t.value for t in at.title] == ["Overview"]
    assert audit_actions(ctx, "user:alice")[-1] == "signin"


def test_an_idle_session_ends(ctx: ServiceContext, access: Settings) -> None:
    at = start(VIEWER)
    assert [t.value for t in at.title] == ["Overview"]
    with time_machine.travel(utcnow() + timedelta(seconds=access.dashboard_idle_timeout_s + 60), tick=True):
        at.run()
        assert_sign_in_only(at)
        assert "signed out after 8 h without activity" in texts(at)
    assert audit_actions(ctx, "user:victor")[-1] == "session_expired"


def test_a_new_password_or_a_removed_user_ends_open_sessions(ctx: ServiceContext, access: Settings) -> None:
    set_user(access.users_file, "carol", "viewer", "carol-password-1")
    at = start(User("carol", "viewer"), "people")
    assert shows_enrolled(at)
    set_user(access.users_file, "carol", "viewer", "carol-password-2", replace=True)
    at.run()
    assert_sign_in_only(at)
    assert "changed or removed" in texts(at)
    at = sign_in(at, "carol", "carol-password-2")
    assert [t.value for t in at.title] == ["People"]  # back on the page the session was on
    remove_user(access.users_file, "carol")
    at.run()
    assert_sign_in_only(at)
    assert audit_actions(ctx, "user:carol")[-1] == "session_revoked"
