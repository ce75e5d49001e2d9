"""Attendance's cooldown and days on the fakes, with explicit times only (never the clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from services.attendance.events import daily_report, events, record_event
from services.attendance.streams import process_frames
from services.context import ServiceContext
from services.registry.enrollment import ImageInput, enroll
from services.registry.persons import PersonInput
from tests.unit.conftest import make_fake_context, unit_settings
from tests.unit.fakes import FaceSpec, blank, photo, portrait

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
    # A late frame, older than the last event: only events up to its own time count against it.
    assert seen(fake_context, "ann", "door", T0 - timedelta(seconds=400))


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
    assert rows[1].first_seen == datetime(2026, 3, 11, 0, 10, tzinfo=ZoneInfo("Asia/Kolkata"))
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
