"""Attendance records that hold, on a real MongoDB-protocol server (SecantusDB): the cooldown claim refused with
E11000, two processes racing for one person at one camera, a writer killed between its claim and its event,
presence written out of order. Every time is explicit: nothing depends on the wall clock."""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.attendance.events import Sighting, daily_report, event_id, events, record_sighting, touch_presence
from services.config import Settings
from services.context import ServiceContext
from services.storage.db import collections, connect, ensure_indexes
from services.storage.faults import CRASH_EXIT_CODE
from services.storage.image_store import ImageStore
from services.storage.vector_index import MemoryIndex
from tests.integration.conftest import isolated_settings
from tests.unit.fakes import FaceSpec, draw

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
COOLDOWN_S = 60.0
SPAWN = mp.get_context("spawn")  # each child opens its own client: nothing inherited from this process


def records_context(settings: Settings) -> ServiceContext:
    """The services on MongoDB alone (no Chroma, no face model): all that attendance records need."""
    database = connect(settings.mongo_uri)
    ensure_indexes(database)
    return ServiceContext(settings, collections(database), MemoryIndex(), ImageStore(settings.data_dir / "images"))


@pytest.fixture
def site(infra: Settings, tmp_path: Path) -> ServiceContext:
    return records_context(isolated_settings(infra, tmp_path, attendance_cooldown_s=COOLDOWN_S))


def sighting(key: str, person: str | None, when: datetime, snapshot: bool = False) -> Sighting:
    return Sighting(
        key=key,
        person_id=person,
        display_name=person and person.title(),
        source="door",
        gallery="default",
        time=when,
        similarity=0.7,
        run_id=key.split("/")[1],
        track_id=int(key.split("/")[2]),
        first_frame=0,
        last_frame=25,
        first_seen=when - timedelta(seconds=1),
        last_seen=when + timedelta(seconds=1),
        snapshot=draw([FaceSpec(3, side=64, x=32, y=32)], size=(128, 128)) if snapshot else None,
    )


def test_the_server_refuses_a_held_claim_with_e11000(site: ServiceContext) -> None:
    """The contract the cooldown is built on: an upsert whose filter misses an existing `_id` is a duplicate key."""
    claims = site.db.attendance_claims
    held = {"_id": "probe|door", "until": {"$lte": T0}}
    claims.find_one_and_update(held, {"$set": {"until": T0 + timedelta(minutes=5)}}, upsert=True)
    with pytest.raises(DuplicateKeyError) as refused:
        claims.find_one_and_update(held, {"$set": {"until": T0}}, upsert=True, return_document=ReturnDocument.AFTER)
    assert refused.value.code == 11000
    # Through the service: the second track within the cooldown is refused that way.
    assert record_sighting(site, sighting("door/run1/1", "ann", T0)).status == "logged"
    assert record_sighting(site, sighting("door/run1/2", "ann", T0 + timedelta(seconds=59))).status == "cooldown"
    assert record_sighting(site, sighting("door/run1/3", "ann", T0 + timedelta(seconds=60))).status == "logged"
    assert [e.track_id for e in events(site, T0.date(), T0.date())] == [3, 1]


def test_a_redelivered_sighting_is_logged_once_and_restarts_keep_the_cooldown(
    site: ServiceContext, infra: Settings
) -> None:
    s = sighting("door/run1/1", "ann", T0, snapshot=True)
    first = record_sighting(site, s)
    assert first.status == "logged" and first.event is not None and first.event.snapshot_path
    assert record_sighting(site, s) == first
    restarted = records_context(site.settings)  # a new client, as after a restart of the script
    assert record_sighting(restarted, s) == first
    assert record_sighting(restarted, sighting("door/run2/1", "ann", T0 + timedelta(seconds=30))).status == "cooldown"
    assert site.db.attendance.count_documents({}) == 1
    assert Path(first.event.snapshot_path).is_file()


def _hammer(settings: Settings, worker: int, rounds: int, tries: int, start: Any, out: Any) -> None:
    """A child process: at each of `rounds` times (a cooldown apart), `tries` tracks of the same person at the same
    camera, each with its own key; what each was told goes to `out`."""
    ctx = records_context(settings)
    start.wait(timeout=60)
    told = []
    for r in range(rounds):
        when = T0 + timedelta(seconds=COOLDOWN_S * r)
        for t in range(tries):
            outcome = record_sighting(ctx, sighting(f"door/w{worker}/{r * tries + t}", "ann", when))
            told.append((r, outcome.status, outcome.event.id if outcome.event else None))
    out.put((worker, told))


def test_two_processes_racing_for_one_person_log_one_event_per_cooldown(site: ServiceContext) -> None:
    rounds, tries = 12, 3
    start, out = SPAWN.Barrier(2), SPAWN.Queue()
    procs = [SPAWN.Process(target=_hammer, args=(site.settings, w, rounds, tries, start, out)) for w in (1, 2)]
    for p in procs:
        p.start()
    told = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    logged = [(r, eid) for w in told for r, status, eid in told[w] if status == "logged"]
    assert Counter(r for r, _ in logged) == {r: 1 for r in range(rounds)}  # exactly one winner per time
    stored = events(site, T0.date(), T0.date())
    assert sorted(e.id for e in stored) == sorted(eid for _, eid in logged)
    assert len(stored) == rounds and {e.person_id for e in stored} == {"ann"}
    claim = site.db.attendance_claims.find_one({"_id": "ann|door"})
    assert claim is not None and claim["pending"] == []
    (row,) = daily_report(site, T0.date(), T0.date())
    last = T0 + timedelta(seconds=COOLDOWN_S * (rounds - 1))
    assert (row.first_seen, row.last_seen, row.count) == (
        T0 - timedelta(seconds=1),
        last + timedelta(seconds=1),
        rounds,
    )


def _crash_after_claim(settings: Settings, s: Sighting) -> None:
    record_sighting(records_context(settings), s)


def test_a_writer_killed_after_its_claim_loses_nothing_and_doubles_nothing(
    site: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = sighting("door/run1/7", "ann", T0, snapshot=True)
    with monkeypatch.context() as m:
        m.setenv("FACEREG_CRASH_AT", "after_attendance_claim")  # the child dies on the spot (os._exit)
        child = SPAWN.Process(target=_crash_after_claim, args=(site.settings, s))
        child.start()
    child.join(timeout=120)
    assert child.exitcode == CRASH_EXIT_CODE
    assert site.db.attendance.count_documents({}) == 0
    claim = site.db.attendance_claims.find_one({"_id": "ann|door"})
    assert claim is not None and [d["_id"] for d in claim["pending"]] == [event_id(s.key)]
    # Another track inside the cooldown is refused, and rolls the dead writer's event forward.
    assert record_sighting(site, sighting("door/run2/1", "ann", T0 + timedelta(seconds=5))).status == "cooldown"
    assert [e.id for e in events(site, T0.date(), T0.date())] == [event_id(s.key)]
    # The task redelivered: the same event, its snapshot written now, nothing doubled.
    again = record_sighting(site, s)
    assert again.status == "logged" and again.event is not None and again.event.id == event_id(s.key)
    assert again.event.snapshot_path is not None and Path(again.event.snapshot_path).is_file()
    assert site.db.attendance.count_documents({}) == 1


def test_presence_touched_out_of_order_keeps_the_first_and_last_sighting(infra: Settings, tmp_path: Path) -> None:
    ctx = records_context(isolated_settings(infra, tmp_path, timezone="Asia/Kolkata"))  # UTC+05:30
    h = timedelta(hours=1)
    evening = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)  # 23:30 in Kolkata; 19:00 UTC is 00:30 on 03-11 there
    for first, last in [(T0 + 2 * h, T0 + 3 * h), (T0, T0 + h), (evening, evening + h), (T0 + h, T0 + 4 * h)]:
        touch_presence(ctx, "ann", "Ann", "door", first, last)
    stored = {d["_id"]: (d["first_seen"], d["last_seen"]) for d in ctx.db.attendance_presence.find()}
    assert stored == {
        "ann|door|2026-03-10": (T0, evening),
        "ann|door|2026-03-11": (evening + h, evening + h),
    }
    rows = daily_report(ctx, date(2026, 3, 10), date(2026, 3, 11))
    assert [(r.day, f"{r.first_seen:%H:%M}", f"{r.last_seen:%H:%M}", r.count) for r in rows] == [
        (date(2026, 3, 10), "14:30", "23:30", 0),
        (date(2026, 3, 11), "00:30", "00:30", 0),
    ]
