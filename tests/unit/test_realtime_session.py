"""The realtime session on the fakes: frames of moving squares -> tracks -> votes -> attendance, inline.

The squares of tests/unit/fakes.py stand in for faces (FakeDetector finds them, FakeEmbedder knows who they are);
the session, the tracker, the vote, the inline backend and the attendance writes are the real ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from model.detection import DetectorOptions
from services.attendance.capture import CaptureStats, Frame
from services.attendance.events import Sighting
from services.attendance.inline import InlineBackend
from services.attendance.realtime import RealtimeOptions, RealtimeSession, Reply
from services.attendance.voting import VoteRules
from services.context import ServiceContext
from services.storage.records import AttendanceEvent
from tests.unit.fakes import FaceSpec, FakeDetector, draw
from tests.unit.test_identification_logic import ANN, BOB, STRANGER, enroll_people

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
FPS = 10.0
SIZE = (240, 480)


class ListSource:
    """Frames from a list, every one handed over (a file read --fast)."""

    name = "fake"
    is_live = False

    def __init__(self, frames: Sequence[Frame]) -> None:
        self._frames = list(frames)
        self._taken = 0

    def next(self, timeout_s: float = 1.0) -> Frame | None:
        if self._taken >= len(self._frames):
            return None
        self._taken += 1
        return self._frames[self._taken - 1]

    @property
    def ended(self) -> bool:
        return self._taken >= len(self._frames)

    def stats(self) -> CaptureStats:
        return CaptureStats("running", self._taken, 0, 0, 0, FPS)

    def close(self) -> None:
        self._taken = len(self._frames)


def visit(identity: int, start: int, frames: int, y: int = 56, variant: int = 0) -> dict[int, FaceSpec]:
    """A square walking left to right, one frame at a time: a person passing the camera."""
    return {start + i: FaceSpec(identity, variant + i % 3, x=8 + 6 * i, y=y, side=96) for i in range(frames)}


def video(*visits: dict[int, FaceSpec], length: int) -> list[Frame]:
    frames = []
    for f in range(length):
        specs = [v[f] for v in visits if f in v]
        frames.append(Frame(f, draw(specs, SIZE), T0 + timedelta(seconds=f / FPS), float(f)))
    return frames


def run(ctx: ServiceContext, frames: list[Frame], cooldown_s: float = 60.0, **options: object) -> list[AttendanceEvent]:
    opts = RealtimeOptions(
        camera="door",
        run_id="run1",
        gallery="default",
        cooldown_s=cooldown_s,
        min_face=20,
        batch_wait_s=0.0,
        detector=DetectorOptions(upscale_below=0, score_threshold=0.5),
        unknown_merge=0.5,
        **options,  # type: ignore[arg-type]
    )
    session = RealtimeSession(ListSource(frames), FakeDetector(), InlineBackend(ctx, "default", cooldown_s), opts)
    stats = session.run()
    assert session.fatal is None and stats.sightings_lost == 0
    docs = ctx.db.attendance.find({}).sort("time", 1)
    return [AttendanceEvent.from_doc(d) for d in docs]


def test_a_known_person_passing_is_logged_once_with_their_track(fake_context: ServiceContext) -> None:
    ids = enroll_people(fake_context, {ANN: 2})
    events = run(fake_context, video(visit(ANN, 5, 30), length=50))
    assert [(e.person_id, e.source) for e in events] == [(ids[ANN], "door")]
    e = events[0]
    assert e.run_id == "run1" and e.first_frame == 5 and 7 <= (e.last_frame or 0) <= 34  # the track so far when decided
    assert e.first_seen == T0 + timedelta(seconds=0.5) and e.time <= T0 + timedelta(seconds=3.5)
    assert e.snapshot_path is not None and e.embeddings is None


def test_two_people_at_once_and_a_stranger(fake_context: ServiceContext) -> None:
    ids = enroll_people(fake_context, {ANN: 2, BOB: 2})
    frames = video(visit(ANN, 0, 30, y=8), visit(BOB, 10, 30, y=130), visit(STRANGER, 60, 25), length=100)
    events = run(fake_context, frames)
    known = sorted(e.person_id for e in events if e.person_id)
    assert known == sorted([ids[ANN], ids[BOB]])
    unknown = [e for e in events if e.person_id is None]
    assert len(unknown) == 1 and unknown[0].first_frame == 60
    assert unknown[0].embeddings and len(unknown[0].embeddings[0]) == 128


def test_a_return_within_the_cooldown_is_not_logged_and_after_it_is(fake_context: ServiceContext) -> None:
    ids = enroll_people(fake_context, {ANN: 2})
    frames = video(visit(ANN, 0, 20), visit(ANN, 60, 20), visit(ANN, 200, 20), length=230)  # 10 FPS
    events = run(fake_context, frames, cooldown_s=10.0)
    assert [e.first_frame for e in events if e.person_id == ids[ANN]] == [0, 200]


def test_a_stranger_whose_track_breaks_is_one_unknown_visit(fake_context: ServiceContext) -> None:
    enroll_people(fake_context, {ANN: 1})
    frames = video(visit(STRANGER, 0, 20), visit(STRANGER, 50, 20), length=80)  # 3 s apart, cooldown 60 s
    events = run(fake_context, frames)
    assert len([e for e in events if e.person_id is None]) == 1


def test_the_same_run_again_logs_nothing_new(fake_context: ServiceContext) -> None:
    enroll_people(fake_context, {ANN: 2})
    frames = video(visit(ANN, 0, 25), visit(STRANGER, 40, 25), length=70)
    first = run(fake_context, frames)
    assert run(fake_context, frames) == first  # same run id and tracks: the same keys, the same events


def test_detecting_every_third_frame_still_logs_the_visit(fake_context: ServiceContext) -> None:
    ids = enroll_people(fake_context, {ANN: 2})
    events = run(fake_context, video(visit(ANN, 0, 40), length=50), every=3)
    assert [e.person_id for e in events] == [ids[ANN]]


def test_one_bad_face_does_not_log_anyone(fake_context: ServiceContext) -> None:
    ids = enroll_people(fake_context, {ANN: 2})
    # Ann for two frames only, then nothing: fewer than confirm=3 faces agree, too short to be an unknown visit.
    events = run(fake_context, video(visit(ANN, 0, 2), length=40), rules=VoteRules(confirm=3))
    assert ids[ANN] not in {e.person_id for e in events} and events == []


def test_an_unknown_gallery_stops_the_run_with_its_error(fake_context: ServiceContext) -> None:
    enroll_people(fake_context, {ANN: 1})
    opts = RealtimeOptions("door", "r", "nosuch", 60.0, min_face=20, batch_wait_s=0.0)
    backend = InlineBackend(fake_context, "nosuch", 60.0)
    session = RealtimeSession(ListSource(video(visit(ANN, 0, 20), length=20)), FakeDetector(), backend, opts)
    session.run()
    assert session.fatal is not None and session.fatal.code == "not_found"


class FlakyLog(InlineBackend):
    """Fails the first `n` sighting batches, as a worker whose MongoDB is down would."""

    def __init__(self, ctx: ServiceContext, n: int) -> None:
        super().__init__(ctx, "default", 60.0)
        self.failures = n

    def send_sightings(self, batch: int, sightings: Sequence[Sighting]) -> None:
        from model.errors import ErrorInfo

        if self.failures:
            self.failures -= 1
            self._done.append(Reply(batch, error=ErrorInfo("storage_unavailable", "down")))
            return
        super().send_sightings(batch, sightings)


@pytest.mark.parametrize("failures", [1, 4])
def test_a_failed_log_is_sent_again_and_logged_once(fake_context: ServiceContext, failures: int) -> None:
    ids = enroll_people(fake_context, {ANN: 2})
    opts = RealtimeOptions("door", "r", "default", 60.0, min_face=20, batch_wait_s=0.0, retry_s=0.01)
    opts = replace(opts, detector=DetectorOptions(upscale_below=0, score_threshold=0.5))
    backend = FlakyLog(fake_context, failures)
    session = RealtimeSession(ListSource(video(visit(ANN, 0, 30), length=40)), FakeDetector(), backend, opts)
    stats = session.run()
    assert stats.events == 1 and stats.sightings_lost == 0
    assert [d["person_id"] for d in fake_context.db.attendance.find({})] == [ids[ANN]]


def test_a_log_that_keeps_failing_is_reported_lost_not_hidden(fake_context: ServiceContext) -> None:
    enroll_people(fake_context, {ANN: 2})
    opts = RealtimeOptions("door", "r", "default", 60.0, min_face=20, batch_wait_s=0.0, retry_s=0.01)
    opts = replace(opts, detector=DetectorOptions(upscale_below=0, score_threshold=0.5))
    session = RealtimeSession(
        ListSource(video(visit(ANN, 0, 30), length=40)), FakeDetector(), FlakyLog(fake_context, 99), opts
    )
    stats = session.run()
    assert stats.events == 0 and stats.sightings_lost == 2  # the decision and the departure
    assert stats.errors[0] == "storage_unavailable: down"


class Counting(InlineBackend):
    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx, "default", 60.0)
        self.sent: list[Sighting] = []

    def send_sightings(self, batch: int, sightings: Sequence[Sighting]) -> None:
        self.sent += sightings
        super().send_sightings(batch, sightings)


def test_someone_who_stays_is_one_event_and_their_departure_keeps_up(fake_context: ServiceContext) -> None:
    ids = enroll_people(fake_context, {ANN: 2})
    stay = {f: FaceSpec(ANN, f % 3, x=100 + (f // 20) % 4, y=56, side=96) for f in range(1500)}  # 150 s at 10 FPS
    opts = RealtimeOptions("door", "r", "default", 60.0, min_face=20, batch_wait_s=0.0, every=5)
    opts = replace(opts, detector=DetectorOptions(upscale_below=0, score_threshold=0.5))
    backend = Counting(fake_context)
    stats = RealtimeSession(ListSource(video(stay, length=1500)), FakeDetector(), backend, opts).run()
    assert stats.events == 1 and stats.tracks == 1
    assert len({s.key for s in backend.sent}) == 1 and len(backend.sent) >= 4  # decided, +60 s, +120 s, the end
    seen = [s.last_seen for s in backend.sent]
    assert seen == sorted(seen) and seen[-1] - seen[0] >= timedelta(seconds=140)
    [presence] = list(fake_context.db.attendance_presence.find({"person_id": ids[ANN]}))
    assert presence["last_seen"] - presence["first_seen"] >= timedelta(seconds=149)
