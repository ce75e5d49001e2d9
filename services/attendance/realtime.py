"""A camera turned attendance terminal: frames -> face tracks -> votes -> sightings, through a backend.

The session detects (every frame or every Nth) and tracks faces itself; it sends aligned chips of the faces
worth embedding to a `Backend` (in this process, or a worker through the queue: the same calls either way)
and never waits for the answers: each loop takes whatever has come back, so a slow worker costs latency,
never frames. A decided track becomes a `Sighting`, which the backend logs (atomically, idempotently).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np

from model.detection import Detector, DetectorOptions, detect_faces
from model.errors import ErrorInfo
from model.quality import assess
from model.tracking import Track, Tracker, TrackerOptions
from model.types import Detection, FloatArray, ImageArray
from services.attendance.annotate import FaceLabel, annotate, to_jpeg
from services.attendance.cameras import Heartbeat
from services.attendance.capture import CaptureStats, Frame
from services.attendance.events import Sighting
from services.attendance.recognition import ChipMatches, cut_chip
from services.attendance.streams import face_snapshot
from services.attendance.voting import Observation, TrackVote, Verdict, VoteRules, kept_vectors, mean_vector
from services.attendance.voting import unknown_verdict as decide_unknown

HOST = socket.gethostname()
# A decided track still in view is sent again this often, so its person's departure keeps up.
PRESENCE_REFRESH = timedelta(seconds=60)
# A failed batch of sightings is tried this many times in all (logging is idempotent), then reported lost.
SIGHTING_TRIES = 5


@dataclass(frozen=True, slots=True)
class Logged:
    """What the backend did with a sighting."""

    key: str
    status: str  # "logged" | "cooldown"
    event_id: str | None


@dataclass(frozen=True, slots=True)
class Reply:
    """A finished batch: chip matches (one per chip) or log results (one per sighting), or the batch's error."""

    batch: int
    chips: list[ChipMatches] | None = None
    logged: list[Logged] | None = None
    error: ErrorInfo | None = None


class Frames(Protocol):
    """A source of frames (services.attendance.capture.FrameSource)."""

    def next(self, timeout_s: float = 1.0) -> Frame | None: ...

    @property
    def ended(self) -> bool: ...

    def stats(self) -> CaptureStats: ...

    def close(self) -> None: ...


class Backend(Protocol):
    """Where chips are embedded and searched and sightings logged: this process, or the workers."""

    def send_chips(self, batch: int, chips: Sequence[ImageArray]) -> None: ...

    def send_sightings(self, batch: int, sightings: Sequence[Sighting]) -> None: ...

    def replies(self, wait_s: float = 0.0) -> list[Reply]: ...

    def close(self) -> None: ...


def detector_options(megapixels: float = 1.0) -> DetectorOptions:
    """Detection on camera frames: never enlarged, scaled down to `megapixels` (a 1080p frame is detected at
    about 1333x750, the chips still cut from the full frame), and a low score threshold so a face that blurs
    for a frame keeps its track (the tracker starts tracks only from confident detections)."""
    return DetectorOptions(upscale_below=0, score_threshold=0.6, max_pixels=round(megapixels * 1_000_000))


@dataclass(frozen=True, slots=True)
class RealtimeOptions:
    camera: str
    run_id: str
    gallery: str
    cooldown_s: float
    every: int = 1  # detect every Nth processed frame; track in between
    min_face: int = 40  # faces smaller than this (pixels) are tracked but never embedded
    chip_size: int = 112
    batch_size: int = 16  # chips per backend call at most
    batch_wait_s: float = 0.05  # a chip waits at most this long for others to fill its batch
    heartbeat_s: float = 1.0
    max_seconds: float | None = None
    drain_s: float = 60.0  # at the end, how long to wait for the backend's last answers
    retry_s: float = 1.0  # a failed batch of sightings is sent again after 1, 2, 4 ... times this
    rules: VoteRules = field(default_factory=VoteRules)
    tracker: TrackerOptions = field(default_factory=TrackerOptions)
    detector: DetectorOptions = field(default_factory=lambda: detector_options())
    unknown_merge: float | None = None  # an unknown track this similar to a recent one is the same visit


@dataclass(slots=True)
class _Chip:
    track_id: int
    frame: int
    time: datetime
    read_at: float
    quality: float
    image: ImageArray


@dataclass(slots=True)
class _TrackState:
    vote: TrackVote
    track: Track
    in_flight: int = 0
    ended: bool = False
    sent_at: datetime | None = None  # frame time its sighting was last sent
    decided_at: float | None = None  # monotonic read time of the deciding frame


@dataclass(slots=True)
class Stats:
    frames_processed: int = 0
    tracks: int = 0
    chips: int = 0
    chips_failed: int = 0
    events: int = 0
    unknown_events: int = 0
    cooldown_skipped: int = 0
    unknown_merged: int = 0
    sightings_lost: int = 0
    seconds: float = 0.0  # the run's wall time
    stage_s: dict[str, float] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def timed(self, stage: str, seconds: float) -> None:
        self.stage_s[stage] = self.stage_s.get(stage, 0.0) + seconds


Sink = Callable[[dict[str, object]], None]


class RealtimeSession:
    def __init__(
        self,
        source: Frames,
        detector: Detector,
        backend: Backend,
        options: RealtimeOptions,
        *,
        on_event: Sink = lambda e: None,
        on_heartbeat: Callable[[Heartbeat, bytes | None], None] = lambda b, f: None,
        on_frame: Callable[[ImageArray], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source, self.detector, self.backend, self.options = source, detector, backend, options
        self.on_event, self.on_heartbeat, self.on_frame = on_event, on_heartbeat, on_frame
        self.monotonic = monotonic
        self.tracker = Tracker(options.tracker)
        self.stats = Stats()
        self._states: dict[int, _TrackState] = {}
        self._chips: list[_Chip] = []
        self._batches: dict[int, list[_Chip] | tuple[int, list[tuple[Sighting, float]]]] = {}
        self._next_batch = 1
        self._retries: list[tuple[float, int, list[tuple[Sighting, float]]]] = []  # (due, tries, sightings)
        self._counted: set[str] = set()  # sighting keys already counted
        self._unknowns: list[tuple[datetime, FloatArray]] = []  # recent unknown visitors: (last seen, template)
        self._fps = 0.0
        self._last_tick: float | None = None
        self._last_beat = -1e9
        self._latest: Frame | None = None
        self._started = 0.0
        self.fatal: ErrorInfo | None = None

    # -- the loop ---------------------------------------------------------------------------------------------

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> Stats:
        """Read and process frames until the source ends, `should_stop()` or max_seconds; then finish every track."""
        self._started = self.monotonic()
        while not should_stop() and self.fatal is None and not self._timed_out():
            t0 = self.monotonic()
            frame = self.source.next(timeout_s=0.25)
            self.stats.timed("read", self.monotonic() - t0)
            if frame is not None:
                self._process(frame)
            elif self.source.ended:
                break
            self._pump(0.0)
            self._resend_due()
            self._maybe_heartbeat(force=False)
        self._finish()
        self.stats.seconds = self.monotonic() - self._started
        return self.stats

    def _timed_out(self) -> bool:
        limit = self.options.max_seconds
        return limit is not None and self.monotonic() - self._started >= limit

    def _process(self, frame: Frame) -> None:
        self._latest = frame
        n = self.stats.frames_processed
        self.stats.frames_processed += 1
        if n % self.options.every == 0:
            t0 = self.monotonic()
            detections = detect_faces(self.detector, frame.image, self.options.detector)
            t1 = self.monotonic()
            update = self.tracker.update(frame.index, detections)
            self.stats.timed("detect", t1 - t0)
            self.stats.timed("track", self.monotonic() - t1)
            t2 = self.monotonic()
            for track, det in update.matched:
                self._observe(track, det, frame)
            self.stats.timed("chips", self.monotonic() - t2)
            for track in update.ended:
                self._end(track)
        else:
            self.tracker.advance(frame.index)
        self._flush_chips(force=False)
        self._tick_fps()
        if self.on_frame is not None:
            t3 = self.monotonic()
            self.on_frame(self._annotated(frame))
            self.stats.timed("annotate", self.monotonic() - t3)

    def _observe(self, track: Track, det: Detection, frame: Frame) -> None:
        state = self._states.get(track.id)
        if state is None:
            state = self._states[track.id] = _TrackState(TrackVote(track.id, first_time=frame.time), track)
            self.stats.tracks += 1
        state.vote.last_time = frame.time
        verdict = state.vote.verdict
        if verdict is not None:  # decided: no more chips; its event and snapshot are stored already
            if state.sent_at is not None and frame.time - state.sent_at >= PRESENCE_REFRESH:
                self._log(state, verdict)  # still there: the departure moves on (logging is idempotent)
            return
        if det.size < self.options.min_face:
            return
        chip = cut_chip(frame.image, det, self.options.chip_size)
        quality = assess(det, chip).score
        if quality > state.vote.best_quality:
            state.vote.snapshot = face_snapshot(frame.image, [float(v) for v in det.box])
        if state.vote.wants(quality, frame.index, self.options.rules):
            state.vote.sent(quality, frame.index)
            state.in_flight += 1
            self._chips.append(_Chip(track.id, frame.index, frame.time, frame.read_at, quality, chip))

    # -- the backend ------------------------------------------------------------------------------------------

    def _flush_chips(self, force: bool) -> None:
        while self._chips and (
            force
            or len(self._chips) >= self.options.batch_size
            or self.monotonic() - self._chips[0].read_at >= self.options.batch_wait_s
        ):
            batch, self._chips = self._chips[: self.options.batch_size], self._chips[self.options.batch_size :]
            t0 = self.monotonic()
            self.backend.send_chips(self._new_batch(batch), [c.image for c in batch])
            self.stats.timed("backend", self.monotonic() - t0)
            self.stats.chips += len(batch)

    def _send_sightings(self, sightings: list[tuple[Sighting, float]], tries: int = 0) -> None:
        t0 = self.monotonic()
        self.backend.send_sightings(self._new_batch((tries, sightings)), [s for s, _ in sightings])
        self.stats.timed("backend", self.monotonic() - t0)

    def _new_batch(self, pending: list[_Chip] | tuple[int, list[tuple[Sighting, float]]]) -> int:
        batch = self._next_batch
        self._next_batch += 1
        self._batches[batch] = pending
        return batch

    def _pump(self, wait_s: float) -> None:
        t0 = self.monotonic()
        for reply in self.backend.replies(wait_s):
            pending = self._batches.pop(reply.batch, None)
            if isinstance(pending, list):
                self._take_chips(pending, reply)
            elif pending is not None:
                self._take_logged(pending, reply)
        self.stats.timed("replies", self.monotonic() - t0)

    def _take_chips(self, chips: list[_Chip], reply: Reply) -> None:
        if reply.error is not None or reply.chips is None:
            self._failed(reply.error)
            self.stats.chips_failed += len(chips)
            results: list[ChipMatches | None] = [None] * len(chips)
        else:
            results = list(reply.chips)
        for chip, result in zip(chips, results, strict=True):
            state = self._states.get(chip.track_id)
            if state is None:
                continue
            state.in_flight -= 1
            if result is not None:
                obs = Observation(chip.frame, chip.time, chip.quality, result.matches, result.threshold, result.vector)
                verdict = state.vote.add(obs, self.options.rules)
                if verdict is not None:
                    state.decided_at = chip.read_at
                    self._log(state, verdict)
            if state.ended and state.in_flight == 0:
                self._close(state)

    def _take_logged(self, pending: tuple[int, list[tuple[Sighting, float]]], reply: Reply) -> None:
        tries, sightings = pending
        if reply.error is not None or reply.logged is None:
            self._failed(reply.error)
            if tries + 1 < SIGHTING_TRIES and self.fatal is None:
                due = self.monotonic() + self.options.retry_s * 2**tries
                self._retries.append((due, tries + 1, sightings))
            else:
                self.stats.sightings_lost += len(sightings)
            return
        now = self.monotonic()
        for (sighting, read_at), logged in zip(sightings, reply.logged, strict=True):
            self._count(sighting, logged, (now - read_at) * 1000.0)

    def _resend_due(self) -> None:
        now = self.monotonic()
        due = [r for r in self._retries if r[0] <= now]
        self._retries = [r for r in self._retries if r[0] > now]
        for _, tries, sightings in due:
            self._send_sightings(sightings, tries)

    def _count(self, sighting: Sighting, logged: Logged, latency_ms: float) -> None:
        if sighting.key in self._counted:  # a track's departure, sent again: counted when it was decided
            return
        self._counted.add(sighting.key)
        if logged.status != "logged":
            self.stats.cooldown_skipped += 1
            return
        if sighting.person_id is None:
            self.stats.unknown_events += 1
        else:
            self.stats.events += 1
        self.stats.latencies_ms.append(latency_ms)
        self.on_event(
            {
                "event_id": logged.event_id,
                "camera": sighting.source,
                "person_id": sighting.person_id,
                "name": sighting.display_name or "unknown",
                "similarity": round(sighting.similarity, 4),
                "time": sighting.time.isoformat(),
                "track": sighting.track_id,
                "frames": [sighting.first_frame, sighting.last_frame],
            }
        )

    def _failed(self, error: ErrorInfo | None) -> None:
        message = f"{error.code}: {error.message}" if error else "no answer"
        if len(self.stats.errors) < 20:
            self.stats.errors.append(message)
        if error is not None and error.code in FATAL_CODES:
            self.fatal = error

    # -- decisions --------------------------------------------------------------------------------------------

    def _log(self, state: _TrackState, verdict: Verdict) -> None:
        sighting = self._sighting(state, verdict, None)
        state.sent_at = state.vote.last_time
        self._send_sightings([(sighting, state.decided_at if state.decided_at is not None else self.monotonic())])

    def _end(self, track: Track) -> None:
        state = self._states.get(track.id)
        if state is None:
            return
        state.ended = True
        if state.in_flight == 0:
            self._close(state)

    def _close(self, state: _TrackState) -> None:
        """An ended track with no answer outstanding: known ones tell their departure, undecided ones may be
        an unknown visitor."""
        self._states.pop(state.track.id, None)
        verdict = state.vote.verdict
        if verdict is not None:  # sent again with its last sighting: the departure (logging is idempotent)
            self._send_sightings([(self._sighting(state, verdict, None), self.monotonic())])
            return
        unknown = decide_unknown(state.vote.observations, state.track.hits, self.options.rules)
        if unknown is None:
            return
        vectors = kept_vectors(state.vote.observations, self.options.rules)
        if self._seen_unknown(state, vectors):
            self.stats.unknown_merged += 1
            return
        self._send_sightings([(self._sighting(state, unknown, vectors), self.monotonic())])

    def _seen_unknown(self, state: _TrackState, vectors: list[FloatArray]) -> bool:
        """Whether this unknown face is the visitor of a recent unknown track (a broken track, a return within
        the cooldown); remembers it either way."""
        first, last = state.vote.first_time, state.vote.last_time
        assert first is not None and last is not None  # set on the track's first frame
        template = mean_vector(vectors)
        since = first - timedelta(seconds=self.options.cooldown_s)
        self._unknowns = [(t, v) for t, v in self._unknowns if t >= since]
        threshold = self.options.unknown_merge
        seen = threshold is not None and any(float(np.dot(template, v)) >= threshold for _, v in self._unknowns)
        self._unknowns.append((last, template))
        return seen

    def _sighting(self, state: _TrackState, verdict: Verdict, vectors: list[FloatArray] | None) -> Sighting:
        vote, track = state.vote, state.track
        first = vote.first_time
        last = vote.last_time
        assert first is not None and last is not None  # set on the track's first frame
        decided = next((o.time for o in vote.observations if o.frame == verdict.frame), last)
        return Sighting(
            key=f"{self.options.camera}/{self.options.run_id}/{track.id}",
            person_id=verdict.person_id,
            display_name=verdict.display_name,
            source=self.options.camera,
            gallery=self.options.gallery,
            time=decided,
            similarity=verdict.similarity,
            run_id=self.options.run_id,
            track_id=track.id,
            first_frame=track.first_frame,
            last_frame=track.last_frame,
            first_seen=first,
            last_seen=last,
            snapshot=vote.snapshot,
            embeddings=tuple(tuple(float(x) for x in v) for v in vectors) if vectors is not None else None,
        )

    # -- the live side ----------------------------------------------------------------------------------------

    def _tick_fps(self) -> None:
        now = self.monotonic()
        last, self._last_tick = self._last_tick, now
        if last is not None and now > last:
            self._fps = 0.9 * self._fps + 0.1 * (1.0 / (now - last)) if self._fps else 1.0 / (now - last)

    def _labels(self) -> list[FaceLabel]:
        labels = []
        for track in self.tracker.tracks:
            state = self._states.get(track.id)
            verdict = state.vote.verdict if state else None
            if verdict is not None:
                labels.append(FaceLabel(track.box, f"{verdict.display_name} {verdict.similarity:.2f}", "known"))
            else:
                labels.append(FaceLabel(track.box, "...", "undecided"))
        return labels

    def _annotated(self, frame: Frame) -> ImageArray:
        return annotate(frame.image, self._labels(), self._fps, self.options.camera)

    def _maybe_heartbeat(self, force: bool, state: str | None = None) -> None:
        now = self.monotonic()
        if not force and now - self._last_beat < self.options.heartbeat_s:
            return
        self._last_beat = now
        t0 = self.monotonic()
        stats = self.source.stats()
        latest = self._latest
        jpeg = to_jpeg(self._annotated(latest)) if latest is not None and state is None else None
        beat = Heartbeat(
            camera=self.options.camera,
            state=state or stats.state,
            fps=round(self._fps, 2),
            last_frame_at=latest.time if latest else None,
            faces_in_view=len(self.tracker.tracks),
            reconnects=stats.reconnects,
            frames_read=stats.frames_read,
            frames_dropped=stats.frames_dropped,
            run_id=self.options.run_id,
            host=HOST,
            pid=os.getpid(),
        )
        self.on_heartbeat(beat, jpeg)
        self.stats.timed("publish", self.monotonic() - t0)

    # -- the end ----------------------------------------------------------------------------------------------

    def _finish(self) -> None:
        """Every chip answered, every track closed, every sighting logged (or `drain_s` passed)."""
        self._flush_chips(force=True)
        deadline = self.monotonic() + self.options.drain_s
        self._drain(deadline, chips_only=True)
        for track in self.tracker.finish():
            self._end(track)
        self._drain(deadline, chips_only=False)
        lost = sum(len(p[1]) for p in self._batches.values() if isinstance(p, tuple))
        self.stats.sightings_lost += lost + sum(len(r[2]) for r in self._retries)
        self._maybe_heartbeat(force=True, state="stopped")

    def _drain(self, deadline: float, chips_only: bool) -> None:
        def waiting() -> bool:
            pending = any(isinstance(p, list) or not chips_only for p in self._batches.values())
            return pending or (not chips_only and bool(self._retries))

        while waiting() and self.monotonic() < deadline and self.fatal is None:
            self._pump(0.2 if self._batches else 0.0)
            self._resend_due()
            if not self._batches and self._retries:
                time.sleep(min(0.2, max(0.0, min(r[0] for r in self._retries) - self.monotonic())))


STAGES = ("read", "detect", "track", "chips", "backend", "replies", "annotate", "publish")


def summarise(camera: str, stats: Stats, capture: CaptureStats) -> dict[str, Any]:
    """A run of one camera in numbers: frames, rate, tracks, events, time per processed frame per stage, and
    frame-to-event latency (from reading the frame that decided a track to its event being stored)."""
    frames = max(1, stats.frames_processed)
    lat = np.asarray(stats.latencies_ms) if stats.latencies_ms else None
    return {
        "camera": camera,
        "frames_read": capture.frames_read,
        "frames_processed": stats.frames_processed,
        "frames_dropped": capture.frames_dropped,
        "frames_corrupt": capture.frames_corrupt,
        "fps": round(stats.frames_processed / stats.seconds, 2) if stats.seconds else 0.0,
        "tracks": stats.tracks,
        "events": stats.events,
        "unknown_events": stats.unknown_events,
        "cooldown_skipped": stats.cooldown_skipped,
        "unknown_merged": stats.unknown_merged,
        "chips": stats.chips,
        "sightings_lost": stats.sightings_lost,
        "reconnects": capture.reconnects,
        "ms_per_stage": {k: round(stats.stage_s.get(k, 0.0) * 1000.0 / frames, 2) for k in STAGES},
        "latency_ms": {
            "p50": round(float(np.percentile(lat, 50)), 1) if lat is not None else None,
            "p95": round(float(np.percentile(lat, 95)), 1) if lat is not None else None,
        },
        "errors": stats.errors,
    }


# Errors after which no further batch can succeed: the run stops with the message.
FATAL_CODES = frozenset({"not_found", "contract_mismatch", "invalid_request", "invalid_task_message"})
