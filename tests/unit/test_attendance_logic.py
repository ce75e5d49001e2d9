"""Attendance's cooldown and days on the fakes, with explicit times only (never the clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.attendance.events import (
    LogOutcome,
    Sighting,
    daily_report,
    event_id,
    events,
    record_event,
    record_sighting,
    touch_presence,
)
from services.attendance.streams import process_frames
from services.context import ServiceContext
from services.registry.enrollment import ImageInput, enroll
from services.registry.erasure import erase_person
from services.registry.persons import PersonInput
from services.storage import attendance_writes
from tests.unit.conftest import make_fake_context, unit_settings
from tests.unit.fakes import FaceSpec, blank, draw, photo, portrait

ANN, BOB, STRANGER = 3, 40, 500
T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
COOLDOWN = timedelta(seconds=300)  # unit_settings' attendance_cooldown_s


def seen(ctx: ServiceContext, person: str | None, source: str, when: datetime) -> bool:
    """One sighting; True when it was logged as an event."""
    return record_event(ctx, person, person, source, 0.9, when=when) is not None


def test_sightings_inside_the_cooldown_are_one_event(fake_context: ServiceContext) -> None:
    assert seen(fake_context, "ann", "door", T0)
    assert not seen(fake_context, "ann", "door", T0 + timedelta(seconds=1))
    assert not seen(fake_context, "ann", "door", T0 + COOLDOWN - timedelta(milliseconds=1))
    assert seen(fake_context, "ann", "door", T0 + COOLDOWN)  # the cooldown is over: a second event
    assert not seen(fake_context, "ann", "door", T0 + COOLDOWN + timedelta(seconds=10))
    assert fake_context.db.attendance.count_documents({}) == 2


def test_the_cooldown_is_per_person_and_source(fake_context: ServiceContext) -> None:
    assert seen(fake_context, "ann", "door", T0)
    assert seen(fake_context, "ann", "gate", T0 + timedelta(seconds=5))
    assert seen(fake_context, "bob", "door", T0 + timedelta(seconds=10))
    assert not seen(fake_context, "bob", "door", T0 + timedelta(seconds=20))
    assert sorted((e.person_id, e.source) for e in events(fake_context, T0.date(), T0.date())) == [
        ("ann", "door"),
        ("ann", "gate"),
        ("bob", "door"),
    ]


def test_unknown_faces_share_one_cooldown_per_source(fake_context: ServiceContext) -> None:
    assert seen(fake_context, None, "door", T0)
    assert not seen(fake_context, None, "door", T0 + timedelta(seconds=30))
    assert seen(fake_context, None, "gate", T0 + timedelta(seconds=30))
    assert seen(fake_context, "ann", "door", T0 + timedelta(seconds=30))
    unknown = events(fake_context, T0.date(), T0.date(), unknown_only=True)
    assert [(e.person_id, e.source) for e in unknown] == [(None, "gate"), (None, "door")]


def test_an_explicit_cooldown_and_a_sighting_before_the_last_event(fake_context: ServiceContext) -> None:
    assert record_event(fake_context, "ann", "Ann", "door", 0.9, when=T0, cooldown_s=0) is not None
    assert record_event(fake_context, "ann", "Ann", "door", 0.9, when=T0 + timedelta(seconds=1), cooldown_s=0)
    # A late frame, older than the last event: only the cooldown windows that hold its time count against it.
    assert seen(fake_context, "ann", "door", T0 - timedelta(seconds=400))
    assert not seen(fake_context, "ann", "door", T0 - timedelta(seconds=399))  # inside the late event's window


def test_a_cooldown_across_midnight_utc(fake_context: ServiceContext) -> None:
    late = datetime(2026, 3, 10, 23, 58, tzinfo=UTC)
    assert seen(fake_context, "ann", "door", late)
    assert not seen(fake_context, "ann", "door", late + timedelta(minutes=3))  # 00:01 the next day
    assert seen(fake_context, "ann", "door", late + COOLDOWN)
    assert [len(events(fake_context, d, d)) for d in (date(2026, 3, 10), date(2026, 3, 11))] == [1, 1]


def test_a_site_zone_keeps_the_cooldown_and_moves_the_days(tmp_path: Path) -> None:
    ctx = make_fake_context(unit_settings(tmp_path, timezone="Asia/Kolkata"))  # UTC+05:30
    before_midnight = datetime(2026, 3, 10, 18, 28, tzinfo=UTC)  # 23:58 in Kolkata
    assert seen(ctx, "ann", "door", before_midnight)
    assert not seen(ctx, "ann", "door", before_midnight + timedelta(minutes=3))  # 00:01 there: same cooldown
    assert seen(ctx, "ann", "door", before_midnight + timedelta(minutes=12))
    rows = daily_report(ctx, date(2026, 3, 10), date(2026, 3, 11))
    assert [(r.day, r.count) for r in rows] == [(date(2026, 3, 10), 1), (date(2026, 3, 11), 1)]
    # The arrival on 03-11 is the 00:01 sighting: no event (the cooldown of 23:58), but she was there.
    assert rows[1].first_seen == datetime(2026, 3, 11, 0, 1, tzinfo=ZoneInfo("Asia/Kolkata"))
    assert rows[1].last_seen == datetime(2026, 3, 11, 0, 10, tzinfo=ZoneInfo("Asia/Kolkata"))
    # The same events seen from UTC fall on one day.
    assert [(r.day, r.count) for r in daily_report(ctx, date(2026, 3, 10), date(2026, 3, 11), tz=UTC)] == [
        (date(2026, 3, 10), 2)
    ]


def test_frames_are_identified_and_logged_with_the_cooldown(fake_context: ServiceContext) -> None:
    ann = enroll(fake_context, PersonInput("Ann"), [ImageInput("a.png", portrait(ANN))]).person_id
    frames = [portrait(ANN, 1), portrait(ANN, 2), portrait(ANN, 3), blank(), portrait(STRANGER), portrait(STRANGER, 1)]
    times = [T0, T0 + timedelta(seconds=60), T0 + COOLDOWN + timedelta(seconds=1), T0, T0, T0 + timedelta(seconds=5)]
    results = process_frames(fake_context, frames, "door", times=times)
    logged = [[f["event_id"] is not None for f in r.faces] for r in results]
    assert logged == [[True], [False], [True], [], [True], [False]]
    assert [r.faces[0]["person_id"] for r in results if r.faces] == [ann, ann, ann, None, None]
    assert all(r.error is None for r in results)
    stored = events(fake_context, T0.date(), T0.date())
    assert sorted((e.person_id or "", e.time) for e in stored) == [("", T0), (ann, T0), (ann, times[2])]
    assert all(e.snapshot_path and Path(e.snapshot_path).is_file() for e in stored)


def test_a_frame_that_is_no_image_is_reported_and_low_quality_faces_are_skipped(fake_context: ServiceContext) -> None:
    enroll(fake_context, PersonInput("Ann"), [ImageInput("a.png", portrait(ANN))])
    group = photo(FaceSpec(ANN, 4, x=16, y=64), FaceSpec(BOB, texture=0, x=176, y=64), size=(256, 320))
    broken, frame = process_frames(fake_context, [b"not an image", group], "door", times=[T0, T0], min_quality=0.5)
    assert broken.faces == [] and broken.error is not None and broken.error.code == "invalid_image"
    assert [f["identity"] for f in frame.faces] == ["Ann"] and frame.error is None
    assert fake_context.db.attendance.count_documents({}) == 1


# --- record_sighting: the atomic cooldown claim, redeliveries, unknown tracks, crashes ---------------------------


def sighting(
    key: str,
    person: str | None,
    when: datetime,
    source: str = "door",
    first: datetime | None = None,
    last: datetime | None = None,
    snapshot: bool = False,
    embeddings: tuple[tuple[float, ...], ...] | None = None,
) -> Sighting:
    """A decided track `key` of `person` (None: unknown) at `source`, decided at `when`."""
    first = first or when - timedelta(seconds=2)
    return Sighting(
        key=key,
        person_id=person,
        display_name=person and person.title(),
        source=source,
        gallery="default",
        time=when,
        similarity=0.8 if person else 0.2,
        run_id="run1",
        track_id=int(key.rsplit("/", 1)[-1]) if key.rsplit("/", 1)[-1].isdigit() else 0,
        first_frame=10,
        last_frame=60,
        first_seen=first,
        last_seen=last or when,
        snapshot=draw([FaceSpec(ANN, side=64, x=32, y=32)], size=(128, 128)) if snapshot else None,
        embeddings=embeddings,
    )


def status(ctx: ServiceContext, s: Sighting, cooldown_s: float | None = None) -> str:
    return record_sighting(ctx, s, cooldown_s).status


def test_a_known_person_is_logged_once_per_cooldown_and_the_window_ends_exactly_at_until(
    fake_context: ServiceContext,
) -> None:
    ctx = fake_context
    first = record_sighting(ctx, sighting("door/run1/1", "ann", T0, snapshot=True))
    assert first.status == "logged" and first.event is not None
    e = first.event
    assert (e.id, e.person_id, e.display_name, e.source, e.time) == (event_id("door/run1/1"), "ann", "Ann", "door", T0)
    assert (e.gallery, e.run_id, e.track_id, e.first_frame, e.last_frame) == ("default", "run1", 1, 10, 60)
    assert (e.first_seen, e.last_seen, e.embeddings) == (T0 - timedelta(seconds=2), T0, None)
    assert status(ctx, sighting("door/run1/2", "ann", T0 + timedelta(seconds=1))) == "cooldown"
    assert status(ctx, sighting("door/run1/3", "ann", T0 + COOLDOWN - timedelta(milliseconds=1))) == "cooldown"
    assert status(ctx, sighting("door/run1/4", "bob", T0 + timedelta(seconds=1))) == "logged"  # another person
    assert status(ctx, sighting("gate/run1/5", "ann", T0 + timedelta(seconds=1), source="gate")) == "logged"
    assert status(ctx, sighting("door/run1/6", "ann", T0 + COOLDOWN)) == "logged"  # `until` is not in the window
    assert status(ctx, sighting("door/run1/7", "ann", T0 + COOLDOWN, source="door"), cooldown_s=10) == "cooldown"
    stored = events(ctx, T0.date(), T0.date(), person_id="ann", source="door")
    assert [x.time for x in stored] == [T0 + COOLDOWN, T0]
    assert stored[1] == e  # what was returned is what was stored


def test_the_cooldown_lives_in_mongodb_not_in_the_process(fake_context: ServiceContext, tmp_path: Path) -> None:
    assert status(fake_context, sighting("door/run1/1", "ann", T0)) == "logged"
    # Another context on the same database (a restarted script, a second worker): the same cooldown holds.
    other = make_fake_context(unit_settings(tmp_path / "other"))
    other.db = fake_context.db
    assert status(other, sighting("door/run2/1", "ann", T0 + timedelta(seconds=30))) == "cooldown"
    claim = fake_context.db.attendance_claims.find_one({"_id": "ann|door"})
    assert (
        claim is not None
        and claim["pending"] == []
        and [w["event_id"] for w in claim["windows"]] == [event_id("door/run1/1")]
    )
    assert claim["windows"][0]["until"] == T0 + COOLDOWN


def test_a_redelivered_sighting_is_the_event_logged_before_and_writes_nothing(fake_context: ServiceContext) -> None:
    ctx = fake_context
    s = sighting("door/run1/1", "ann", T0, snapshot=True)
    first = record_sighting(ctx, s)
    claims_before = ctx.db.attendance_claims.find_one({"_id": "ann|door"})
    again = record_sighting(ctx, s)
    assert again == first == LogOutcome("logged", first.event)
    assert ctx.db.attendance.count_documents({}) == 1
    assert ctx.db.attendance_claims.find_one({"_id": "ann|door"}) == claims_before
    # Also after a later visit took the claim forward.
    assert status(ctx, sighting("door/run1/2", "ann", T0 + 2 * COOLDOWN)) == "logged"
    assert record_sighting(ctx, s) == first
    assert ctx.db.attendance.count_documents({}) == 2


def test_late_sightings_are_checked_against_every_kept_window_both_ways(fake_context: ServiceContext) -> None:
    ctx = fake_context
    later = T0 + timedelta(hours=1)
    assert status(ctx, sighting("door/run1/1", "ann", later)) == "logged"
    assert status(ctx, sighting("door/run1/2", "ann", T0)) == "logged"  # older than the claim, no window holds it
    assert status(ctx, sighting("door/run1/3", "ann", T0 + timedelta(seconds=100))) == "cooldown"  # T0's window
    assert status(ctx, sighting("door/run1/4", "ann", later + timedelta(seconds=100))) == "cooldown"
    # Nor within the cooldown before a logged event: two scripts on one camera, the later-written one decided first.
    assert status(ctx, sighting("door/run1/5", "ann", later - timedelta(seconds=1))) == "cooldown"
    assert status(ctx, sighting("door/run1/6", "ann", later - COOLDOWN)) == "logged"  # exactly a cooldown before
    windows = ctx.db.attendance_claims.find_one({"_id": "ann|door"})["windows"]  # type: ignore[index]
    assert [w["since"] for w in windows] == sorted(w["since"] for w in windows)


def test_the_claim_keeps_its_newest_windows(fake_context: ServiceContext) -> None:
    times = [T0 + n * COOLDOWN for n in range(attendance_writes.KEPT_WINDOWS + 3)]
    for n, t in enumerate(times):
        assert status(fake_context, sighting(f"door/run1/{n}", "ann", t)) == "logged"
    windows = fake_context.db.attendance_claims.find_one({"_id": "ann|door"})["windows"]  # type: ignore[index]
    assert [w["since"] for w in windows] == times[-attendance_writes.KEPT_WINDOWS :]


def test_each_unknown_track_is_one_event_with_its_embeddings(fake_context: ServiceContext) -> None:
    ctx = fake_context
    vectors = ((0.6, 0.8, 0.0), (0.0, 0.6, 0.8))
    a = record_sighting(ctx, sighting("door/run1/1", None, T0, snapshot=True, embeddings=vectors))
    b = record_sighting(ctx, sighting("door/run1/2", None, T0, embeddings=vectors[:1]))
    c = record_sighting(ctx, sighting("door/run1/3", None, T0 + timedelta(seconds=1)))
    assert [o.status for o in (a, b, c)] == ["logged"] * 3
    assert a.event is not None and a.event.embeddings == [[0.6, 0.8, 0.0], [0.0, 0.6, 0.8]]
    assert b.event is not None and b.event.embeddings == [[0.6, 0.8, 0.0]]
    assert c.event is not None and c.event.embeddings is None
    assert "embeddings" not in (ctx.db.attendance.find_one({"_id": c.event.id}) or {})
    assert record_sighting(ctx, sighting("door/run1/1", None, T0, embeddings=vectors)) == a  # redelivered
    assert len(events(ctx, T0.date(), T0.date(), unknown_only=True)) == 3
    assert ctx.db.attendance_claims.count_documents({}) == 0  # no cooldown across unknown tracks
    assert ctx.db.attendance_presence.count_documents({}) == 0
    # A known person's embeddings are never kept.
    known = record_sighting(ctx, sighting("door/run1/4", "ann", T0, embeddings=vectors)).event
    assert known is not None and known.embeddings is None


def test_snapshots_are_named_by_the_event_and_written_whole(fake_context: ServiceContext) -> None:
    logged = record_sighting(fake_context, sighting("door/run1/1", "ann", T0, snapshot=True)).event
    assert logged is not None and logged.snapshot_path is not None
    path = Path(logged.snapshot_path)
    assert path.name == f"{logged.id}.jpg" and path.read_bytes().startswith(b"\xff\xd8\xff")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left beside it
    path.unlink()  # lost (the writer died before writing it): a redelivery writes the same file again
    assert record_sighting(fake_context, sighting("door/run1/1", "ann", T0, snapshot=True)).event == logged
    assert path.is_file()


class Crash(Exception):
    """Stands for the process dying at a crash point."""


def crash_at(monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    def crash(name: str) -> None:
        if name == point:
            raise Crash(name)

    monkeypatch.setattr(attendance_writes, "crash_point", crash)


def test_an_event_claimed_by_a_writer_that_died_is_rolled_forward_once(
    fake_context: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = fake_context
    s = sighting("door/run1/1", "ann", T0, snapshot=True)
    with monkeypatch.context() as m:
        crash_at(m, "after_attendance_claim")
        with pytest.raises(Crash):
            record_sighting(ctx, s)
    assert ctx.db.attendance.count_documents({}) == 0  # claimed, not inserted: the event waits in the claim
    claim = ctx.db.attendance_claims.find_one({"_id": "ann|door"})
    assert claim is not None and [d["_id"] for d in claim["pending"]] == [event_id(s.key)]
    # The next claim on that key rolls it forward (and is in its cooldown).
    assert status(ctx, sighting("door/run2/1", "ann", T0 + timedelta(seconds=5))) == "cooldown"
    assert [e.id for e in events(ctx, T0.date(), T0.date())] == [event_id(s.key)]
    # The redelivery of the sighting that died: "logged", that same event, its snapshot written now.
    again = record_sighting(ctx, s)
    assert again.status == "logged" and again.event is not None and again.event.id == event_id(s.key)
    assert again.event.snapshot_path is not None and Path(again.event.snapshot_path).is_file()
    assert ctx.db.attendance.count_documents({}) == 1
    assert ctx.db.attendance_claims.find_one({"_id": "ann|door"})["pending"] == []  # type: ignore[index]


def test_a_read_rolls_forward_and_a_redelivery_after_a_crash_is_logged(
    fake_context: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = fake_context
    s = sighting("door/run1/1", "ann", T0)
    with monkeypatch.context() as m:
        crash_at(m, "after_attendance_claim")
        with pytest.raises(Crash):
            record_sighting(ctx, s)
        with pytest.raises(Crash):
            record_event(ctx, None, None, "door", 0.2, when=T0)  # the frame path shares the claim code
    # Redelivered before anything else ran: its own window holds it, and it is the event, rolled forward.
    assert record_sighting(ctx, s).status == "logged"
    assert ctx.db.attendance.count_documents({}) == 1
    # A read of the events rolls forward the unknown face's event too.
    assert len(events(ctx, T0.date(), T0.date())) == 2
    assert ctx.db.attendance_claims.count_documents({"pending.0": {"$exists": True}}) == 0


def test_a_frame_seen_twice_is_the_same_event(fake_context: ServiceContext) -> None:
    first = record_event(fake_context, "ann", "Ann", "door", 0.9, when=T0)
    assert first is not None
    assert record_event(fake_context, "ann", "Ann", "door", 0.9, when=T0) == first  # a redelivered frame
    assert record_event(fake_context, "ann", "Ann", "door", 0.9, when=T0 + timedelta(seconds=1)) is None
    assert fake_context.db.attendance.count_documents({}) == 1


# --- arrival and departure ---------------------------------------------------------------------------------------


def presence_docs(ctx: ServiceContext) -> dict[str, tuple[datetime, datetime]]:
    return {d["_id"]: (d["first_seen"], d["last_seen"]) for d in ctx.db.attendance_presence.find()}


def test_presence_keeps_the_first_and_last_sighting_in_any_order(fake_context: ServiceContext) -> None:
    ctx = fake_context
    h = timedelta(hours=1)
    for first, last in [(T0 + 2 * h, T0 + 3 * h), (T0, T0 + h), (T0 + h, T0 + 5 * h), (T0 + h, T0 + 2 * h)]:
        touch_presence(ctx, "ann", "Ann", "door", first, last)
    assert presence_docs(ctx) == {"ann|door|2026-03-10": (T0, T0 + 5 * h)}
    with pytest.raises(ValueError, match="before the first"):
        touch_presence(ctx, "ann", "Ann", "door", T0, T0 - h)


def test_a_track_across_midnight_counts_on_both_days(fake_context: ServiceContext) -> None:
    late, early = datetime(2026, 3, 10, 23, 50, tzinfo=UTC), datetime(2026, 3, 11, 0, 10, tzinfo=UTC)
    assert status(fake_context, sighting("door/run1/1", "ann", late, first=late, last=early)) == "logged"
    assert presence_docs(fake_context) == {"ann|door|2026-03-10": (late, late), "ann|door|2026-03-11": (early, early)}
    rows = daily_report(fake_context, date(2026, 3, 10), date(2026, 3, 11))
    assert [(r.day, r.first_seen, r.last_seen, r.count) for r in rows] == [
        (date(2026, 3, 10), late, late, 1),
        (date(2026, 3, 11), early, early, 0),  # present, no event that day
    ]


def test_presence_days_follow_the_site_zone_across_dst(tmp_path: Path) -> None:
    ctx = make_fake_context(unit_settings(tmp_path, timezone="America/Los_Angeles"))
    # 2026-03-08: clocks go forward at 02:00 PST (10:00 UTC); the day runs 08:00 UTC to 07:00 UTC next day.
    times = {
        datetime(2026, 3, 8, 7, 59, tzinfo=UTC): date(2026, 3, 7),  # 23:59 PST
        datetime(2026, 3, 8, 8, 0, tzinfo=UTC): date(2026, 3, 8),  # 00:00 PST
        datetime(2026, 3, 8, 10, 0, tzinfo=UTC): date(2026, 3, 8),  # 03:00 PDT
        datetime(2026, 3, 9, 6, 59, tzinfo=UTC): date(2026, 3, 8),  # 23:59 PDT
        datetime(2026, 3, 9, 7, 0, tzinfo=UTC): date(2026, 3, 9),  # 00:00 PDT
    }
    for t in reversed(list(times)):
        touch_presence(ctx, "ann", "Ann", "door", t, t)
    stored = presence_docs(ctx)
    assert sorted(stored) == sorted({f"ann|door|{d}" for d in times.values()})
    assert stored["ann|door|2026-03-08"] == (
        datetime(2026, 3, 8, 8, 0, tzinfo=UTC),
        datetime(2026, 3, 9, 6, 59, tzinfo=UTC),
    )
    (row,) = daily_report(ctx, date(2026, 3, 8), date(2026, 3, 8))
    assert (row.count, f"{row.first_seen:%H:%M %Z}", f"{row.last_seen:%H:%M %Z}") == (0, "00:00 PST", "23:59 PDT")
    # By UTC days: the sightings kept (each site day's first and last; 03:00 PDT was neither) on their UTC days.
    assert [
        (r.day, f"{r.first_seen:%H:%M}", f"{r.last_seen:%H:%M}")
        for r in daily_report(ctx, date(2026, 3, 8), date(2026, 3, 9), tz=UTC)
    ] == [(date(2026, 3, 8), "07:59", "08:00"), (date(2026, 3, 9), "06:59", "07:00")]


def test_the_report_gives_arrival_and_departure_across_sources_and_events_per_day(
    fake_context: ServiceContext,
) -> None:
    ctx = fake_context
    m = timedelta(minutes=1)
    assert status(ctx, sighting("door/run1/1", "ann", T0, first=T0 - m, last=T0 + 30 * m)) == "logged"
    assert status(ctx, sighting("door/run1/2", "ann", T0 + m, last=T0 + 40 * m)) == "cooldown"
    assert status(ctx, sighting("gate/run1/3", "ann", T0 + 8 * 60 * m, source="gate")) == "logged"
    touch_presence(ctx, "ann", "Ann", "gate", T0 + 9 * 60 * m, T0 + 9 * 60 * m)  # a known track ended
    (everywhere,) = daily_report(ctx, T0.date(), T0.date())
    assert (everywhere.first_seen, everywhere.last_seen, everywhere.count) == (T0 - m, T0 + 9 * 60 * m, 2)
    (door,) = daily_report(ctx, T0.date(), T0.date(), source="door")
    assert (door.first_seen, door.last_seen, door.count, door.display_name) == (T0 - m, T0 + 40 * m, 1, "Ann")
    assert daily_report(ctx, T0.date(), T0.date(), person_id="bob") == []


def test_an_old_event_without_presence_still_counts(fake_context: ServiceContext) -> None:
    old = {"_id": "e-old", "person_id": "ann", "display_name": "Ann", "source": "door", "time": T0}
    fake_context.db.attendance.insert_one({**old, "similarity": 0.9, "snapshot_path": None})
    (row,) = daily_report(fake_context, T0.date(), T0.date())
    assert (row.first_seen, row.last_seen, row.count) == (T0, T0, 1)
    (event,) = events(fake_context, T0.date(), T0.date())
    assert (event.id, event.gallery, event.track_id, event.embeddings) == ("e-old", None, None, None)


# --- erasure -------------------------------------------------------------------------------------------------------


def test_erasing_a_person_removes_presence_claims_and_pending_copies(
    fake_context: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = fake_context
    ann = enroll(ctx, PersonInput("Ann"), [ImageInput("a.png", portrait(ANN))]).person_id
    bob = enroll(ctx, PersonInput("Bob"), [ImageInput("b.png", portrait(BOB))]).person_id
    assert ann is not None and bob is not None
    logged = record_sighting(ctx, sighting("door/run1/1", ann, T0, snapshot=True)).event
    assert logged is not None and logged.snapshot_path is not None
    with monkeypatch.context() as m:
        crash_at(m, "after_attendance_claim")
        with pytest.raises(Crash):
            record_sighting(ctx, sighting("gate/run1/2", ann, T0, source="gate"))
    assert status(ctx, sighting("door/run1/3", bob, T0)) == "logged"
    # An anonymised event must not keep embeddings either (as an unknown event would have them).
    ctx.db.attendance.update_one({"_id": logged.id}, {"$set": {"embeddings": [[0.1, 0.2]]}})
    report = erase_person(ctx, ann)
    assert (report.attendance_rows, report.snapshots_deleted) == (2, 1) and not Path(logged.snapshot_path).exists()
    assert ctx.db.attendance_claims.count_documents({"person_id": ann}) == 0
    assert ctx.db.attendance_presence.count_documents({"person_id": ann}) == 0
    assert not any(
        ann in str(d) for c in ("attendance_claims", "attendance_presence") for d in getattr(ctx.db, c).find()
    )
    anonymised = list(ctx.db.attendance.find({"erased": True}))
    assert len(anonymised) == 2 and all(d["person_id"] is None and "embeddings" not in d for d in anonymised)
    # Bob's records are untouched.
    assert ctx.db.attendance_claims.count_documents({"person_id": bob}) == 1
    assert ctx.db.attendance_presence.count_documents({"person_id": bob}) == 1
