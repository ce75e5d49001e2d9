"""The dashboard's pages run by Streamlit's AppTest against the real servers and a real worker process:
both roles on every page, and each page's actions followed to their effect in MongoDB/Chroma."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import cv2
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.auth import User, set_user
from model.pipeline import FacePipeline
from scripts.supervisor import launcher
from services.attendance.events import record_event
from services.config import Settings
from services.context import ServiceContext, open_context
from services.registry.enrollment import ImageInput, enroll
from services.registry.galleries import ensure_gallery, get_gallery
from services.registry.persons import PersonInput
from tests.integration.apptest import dashboard_environ, start, texts
from tests.integration.conftest import isolated_settings

VIEWER_PASSWORD = "victor-password-1"
ADMIN, VIEWER = User("alice", "admin"), User("victor", "viewer")
PASSWORD = "alice-password-1"
PAGES = {
    "overview": "Overview",
    "enroll": "Enroll a person",
    "people": "People",
    "search": "Search & verify",
    "evaluation": "Gallery evaluation",
    "duplicates": "Duplicates",
    "attendance": "Attendance",
    "cameras": "Cameras",
    "settings": "Settings",
}
Img = Callable[[str, int], Path]


@pytest.fixture(scope="module")
def dash(infra: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The dashboard's settings in the environment (its task client is built from them), one worker."""
    redis_db3 = infra.redis_url.rsplit("/", 1)[0] + "/3"  # a queue of its own: no task of another module
    settings = isolated_settings(
        infra, tmp_path_factory.mktemp("dash"), model="mobilefacenet", redis_url=redis_db3, timezone="Asia/Kolkata"
    )
    users = settings.data_dir / "users.json"
    set_user(users, ADMIN.name, "admin", PASSWORD)
    set_user(users, VIEWER.name, "viewer", VIEWER_PASSWORD)
    with dashboard_environ(settings, users):
        procs = launcher.start_workers(settings, 1, settings.data_dir / "logs", name="dash")
        try:
            assert launcher.wait_online(settings, 1, timeout=180) == 1, "the worker did not come online"
            yield settings
        finally:
            launcher.stop_workers(procs)


@pytest.fixture(scope="module")
def ctx(dash: Settings, mfn: FacePipeline) -> ServiceContext:
    return open_context(dash, mfn)


def run_until(at: AppTest, done: Callable[[AppTest], bool], timeout: float = 240.0) -> AppTest:
    """Re-run the page (as the browser's live fragment does) until `done`, or fail with what it shows."""
    deadline = time.monotonic() + timeout
    while not done(at):
        assert not at.exception, [e.value for e in at.exception]
        if time.monotonic() > deadline:
            pytest.fail(f"the page did not get there in {timeout:.0f} s; it shows:\n{texts(at)}")
        time.sleep(0.5)
        at.run()
    return at


def photo(lfw_image: Img, person: str, n: int) -> tuple[str, bytes, str]:
    return (f"{person}_{n:04d}.jpg", lfw_image(person, n).read_bytes(), "image/jpeg")


def enroll_direct(ctx: ServiceContext, name: str, paths: list[Path], gallery: str = "default") -> str:
    images = [ImageInput(p.name, p.read_bytes()) for p in paths]
    return enroll(ctx, PersonInput(name), images, gallery).person_id


@pytest.mark.parametrize("user", [ADMIN, VIEWER], ids=["admin", "viewer"])
def test_every_page_renders_for_both_roles(dash: Settings, user: User) -> None:
    at = start(user)
    for page, title in PAGES.items():
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert title in [t.value for t in at.title], page


def test_viewer_is_refused_every_edit(dash: Settings, ctx: ServiceContext, lfw_image: Img) -> None:
    pid = enroll_direct(ctx, "Viewer Target", [lfw_image("Hugo_Chavez", 1)])
    at = start(VIEWER, "enroll")
    assert "Only an administrator can enroll people" in texts(at)
    assert not at.file_uploader and [b.key for b in at.button] == ["logout"]
    at.session_state["people_selected"] = pid
    at.switch_page("views/people.py").run()
    assert "Viewer Target" in texts(at)
    assert not [b for b in at.button if b.label in ("Remove", "Delete permanently", "Rename")]
    assert "Only an administrator can add photos, rename or delete people" in texts(at)
    at.switch_page("views/settings.py").run()
    assert all(n.disabled for n in at.number_input)
    at.switch_page("views/evaluation.py").run()
    assert "Only an administrator can run evaluations" in texts(at)
    at.switch_page("views/duplicates.py").run()
    assert not at.radio and "an administrator decides" in texts(at)


def test_enroll_then_search_verify_and_manage_the_person(dash: Settings, ctx: ServiceContext, lfw_image: Img) -> None:
    at = start(ADMIN, "enroll")
    at.text_input(key="enroll_name").input("Tony Blair")
    at.text_input(key="enroll_external_id").input("emp-0042")
    at.checkbox(key="enroll_consent").check()
    at.file_uploader(key="enroll_photos").set_value([photo(lfw_image, "Tony_Blair", n) for n in (1, 2)])
    at.run()
    run_until(at, lambda a: texts(a).count("Good photo") == 2)
    assert not at.button(key="enroll_submit").disabled
    at.button(key="enroll_submit").click().run()
    run_until(at, lambda a: "Enrolled new person **Tony Blair**: 2 photo(s) enrolled." in texts(a))
    person = ctx.db.persons.find_one({"external_id": "emp-0042"})
    assert person is not None and person["consent"]["given"] is True
    g = get_gallery(ctx, "default")
    faces = ctx.db.faces.count_documents({"person_id": person["_id"]})
    assert faces == 2 and ctx.index.count(g.collection) == ctx.db.faces.count_documents({"gallery": "default"})
    at.button(key="enroll_open_person").click().run()
    assert [h.value for h in at.header] == ["Tony Blair"] and "Faces (2)" in texts(at)

    at.switch_page("views/search.py").run()
    at.file_uploader(key="search_photo").set_value(photo(lfw_image, "Tony_Blair", 9))
    at.run()
    run_until(at, lambda a: "face(s)**" in texts(a))
    assert "Face 1: **Tony Blair**" in texts(at)
    at.file_uploader(key="search_photo").set_value(photo(lfw_image, "Gloria_Macapagal_Arroyo", 1))
    at.run()
    run_until(at, lambda a: "Face 1: **unknown**" in texts(a) or ("Face 1: **" in texts(a) and "unknown" in texts(a)))
    assert "Face 1: **unknown**" in texts(at)

    at.file_uploader(key="verify_a").set_value(photo(lfw_image, "Tony_Blair", 3))
    at.file_uploader(key="verify_b").set_value(photo(lfw_image, "Tony_Blair", 4))
    at.run()
    run_until(at, lambda a: "Similarity **" in texts(a))
    assert "**the same person**" in texts(at)

    at.session_state["people_selected"] = person["_id"]
    at.switch_page("views/people.py").run()
    assert "Faces (2)" in texts(at) and "emp-0042" in texts(at)
    at.button(key=next(b.key for b in at.button if b.key and b.key.startswith("remove_face:"))).click().run()
    assert "Faces (1)" in texts(at)
    assert ctx.db.faces.count_documents({"person_id": person["_id"]}) == 1
    at.text_input(key=f"erase_confirm:{person['_id']}").input("Tony Blair").run()
    at.button(key=f"erase:{person['_id']}").click().run()
    assert "Person erased: 1 face(s)" in texts(at)
    assert ctx.db.persons.count_documents({"_id": person["_id"]}) == 0
    assert ctx.index.count(g.collection) == ctx.db.faces.count_documents({"gallery": "default"})


def test_people_list_searches_and_pages(dash: Settings, ctx: ServiceContext, lfw_image: Img) -> None:
    pid = enroll_direct(ctx, "Zelda Listed", [lfw_image("Jennifer_Aniston", 1)])
    at = start(ADMIN, "people")
    at.text_input(key="people_search").input("zelda").run()
    assert at.dataframe[0].value["name"].tolist() == ["Zelda Listed"]
    at.selectbox(key="people_pick").select("Zelda Listed").run()
    assert at.session_state["people_selected"] == pid
    assert "Zelda Listed" in [h.value for h in at.header]


def test_duplicate_pair_is_reviewed_and_merged(dash: Settings, ctx: ServiceContext, lfw_image: Img) -> None:
    a = enroll_direct(ctx, "Colin Powell", [lfw_image("Colin_Powell", 1)])
    b = enroll_direct(ctx, "C. Powell (second record)", [lfw_image("Colin_Powell", 2)])
    at = start(ADMIN, "duplicates")
    at.button(key="dedup_scan_run").click().run()
    run_until(at, lambda a_: "Scan finished" in texts(a_) or "failed" in texts(a_))
    assert "Scan finished: 1 new candidate pair(s)." in texts(at)
    review = f"default:{min(a, b)}:{max(a, b)}"
    assert at.radio(key=f"decision:{review}") is not None
    open_before = ctx.db.dedup_reviews.count_documents({"gallery": "default", "status": "open"})
    keep = "merge_a" if min(a, b) == a else "merge_b"
    at.radio(key=f"decision:{review}").set_value(keep).run()
    at.button(key=f"apply:{review}").click().run()
    assert ctx.db.dedup_reviews.find_one({"_id": review})["status"] == "merged"
    assert ctx.db.dedup_reviews.count_documents({"gallery": "default", "status": "open"}) == open_before - 1
    assert ctx.db.persons.count_documents({"_id": b}) == 0
    assert ctx.db.faces.count_documents({"person_id": a}) == 2
    assert f"Open candidates: {open_before - 1}" in texts(at)


def test_near_identical_photos_keep_the_best(
    dash: Settings, ctx: ServiceContext, lfw_image: Img, tmp_path: Path
) -> None:
    original = lfw_image("Serena_Williams", 1)
    small = cv2.resize(cv2.imread(str(original)), (200, 200))
    copy = tmp_path / "copy.jpg"
    cv2.imwrite(str(copy), small, [cv2.IMWRITE_JPEG_QUALITY, 60])
    pid = enroll_direct(ctx, "Serena Williams", [original, copy])
    assert ctx.db.faces.count_documents({"person_id": pid}) == 2
    at = start(ADMIN, "duplicates")
    at.button(key="image_dups_run").click().run()
    run_until(at, lambda a: "group(s) of copies" in texts(a))
    at.button(key="image_dups_keep").click().run()
    assert "copy(ies) removed" in texts(at)
    assert ctx.db.faces.count_documents({"person_id": pid}) == 1


def test_gallery_evaluation_runs_as_a_job_and_calibrates(
    dash: Settings, ctx: ServiceContext, lfw: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "people"
    people = sorted(p.name for p in (lfw / "images").iterdir() if len(list(p.glob("*.jpg"))) >= 3)[::40][:12]
    for person in people:
        (folder / person).mkdir(parents=True)
        for img in sorted((lfw / "images" / person).glob("*.jpg"))[:3]:
            (folder / person / img.name).symlink_to(img)
    ensure_gallery(ctx, "default")
    at = start(ADMIN, "evaluation")
    at.radio(key="evaluation_kind").set_value("folder").run()
    at.text_input(key="evaluation_root").input(str(folder))
    at.text_input(key="evaluation_gallery:folder").input("eval-apptest")
    started = time.monotonic()
    at.button(key="evaluation_run").click().run()
    query = {"kind": "gallery_evaluation", "params.gallery": "eval-apptest", "state": {"$in": ["done", "failed"]}}
    # The page came back at once with a live progress line; the work runs on the worker.
    assert time.monotonic() - started < 5 and ctx.db.jobs.find_one(query) is None
    assert any(p.proto.text.startswith("Evaluating") for p in at.get("progress"))
    run_until(at, lambda a: ctx.db.jobs.find_one(query) is not None or "failed" in texts(a))
    at.run()
    shown = {m.label: m.value for m in at.metric}
    job = ctx.db.jobs.find_one({"kind": "gallery_evaluation", "params.gallery": "eval-apptest"})
    assert job is not None and job["state"] == "done"
    assert shown["Top-1"] == f"{job['result']['top1']:.2%}" and job["result"]["top1"] >= 0.9
    assert shown["Probes"] == str(job["result"]["n_probes"]) == "24"
    assert "Threshold **" in texts(at)
    at.button(key="evaluation_apply").click().run()
    calibration = get_gallery(ctx, "default").calibration
    assert calibration is not None and "eval-apptest" in calibration["source"]


def test_attendance_report_shows_events_and_unknown_snapshots(
    dash: Settings, ctx: ServiceContext, lfw_image: Img
) -> None:
    pid = enroll_direct(ctx, "Gerhard Schroeder", [lfw_image("Gerhard_Schroeder", 1)])
    # Fixed times: 23:30 and 00:30 UTC are two UTC days but one day (05:00, 06:00) at a site in Kolkata.
    seen = datetime(2026, 1, 15, 0, 30, tzinfo=UTC)
    snap = cv2.cvtColor(cv2.imread(str(lfw_image("Naomi_Watts", 1))), cv2.COLOR_BGR2RGB)
    record_event(ctx, pid, "Gerhard Schroeder", "gate-1", 0.8, when=seen - timedelta(hours=1))
    record_event(ctx, pid, "Gerhard Schroeder", "gate-1", 0.7, when=seen)
    record_event(ctx, None, None, "gate-1", 0.2, snapshot=snap, when=seen)
    at = start(VIEWER, "attendance")
    at.date_input(key="attendance_days").set_value((date(2026, 1, 14), date(2026, 1, 15))).run()
    assert at.date_input(key="attendance_days").label == f"Days ({dash.timezone})"
    rows = at.dataframe[0].value
    row = rows[rows["person"] == "Gerhard Schroeder"].iloc[0]
    assert row["events"] == 2 and row["days"] == 1
    assert "Unknown faces (1)" in texts(at)
    assert at.download_button(key="attendance_csv").label == "Export CSV"
    at.selectbox(key="attendance_source").select("gate-1").run()
    assert not at.exception


def test_overview_counts_what_is_there(dash: Settings, ctx: ServiceContext) -> None:
    at = start(VIEWER)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Persons"] == str(ctx.db.persons.count_documents({}))
    assert metrics["Faces"] == str(ctx.db.faces.count_documents({}))
    assert "worker(s) online" in texts(at)


def test_a_gallery_is_evaluated_on_a_holdout_of_its_own_photos(
    dash: Settings, ctx: ServiceContext, lfw_image: Img
) -> None:
    for person in ("Vladimir_Putin", "Gray_Davis", "Lleyton_Hewitt"):
        enroll_direct(ctx, person.replace("_", " "), [lfw_image(person, n) for n in (1, 2, 3)], "holdout-src")
    at = start(ADMIN)
    at.selectbox(key="gallery_select").select("holdout-src").run()
    at.switch_page("views/evaluation.py").run()
    at.radio(key="evaluation_kind").set_value("gallery").run()
    assert at.text_input(key="evaluation_gallery:gallery").value == "eval-holdout-src"
    at.button(key="evaluation_run").click().run()
    query = {"kind": "gallery_evaluation", "params.gallery": "eval-holdout-src", "state": {"$in": ["done", "failed"]}}
    run_until(at, lambda a: ctx.db.jobs.find_one(query) is not None or "failed" in texts(a))
    at.run()
    job = ctx.db.jobs.find_one({"kind": "gallery_evaluation", "params.gallery": "eval-holdout-src"})
    assert job is not None and job["state"] == "done"
    assert job["result"]["n_probes"] == 6 and job["result"]["n_identities"] == 3
    assert {m.label: m.value for m in at.metric}["Top-1"] == f"{job['result']['top1']:.2%}"
