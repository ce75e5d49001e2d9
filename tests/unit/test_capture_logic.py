"""Reading frames (services.attendance.capture) on scripted fake sources: the backoff and pacing schedules, the
newest-frame hand-over, reconnection and its messages, corrupt frames, the first-frame timeout. No camera, no
file, no sleeping: time is a fake that advances only when the reader sleeps."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from model.types import ImageArray
from services.attendance.capture import (
    BACKOFF_MAX_S,
    Frame,
    FrameSource,
    Handoff,
    Read,
    backoff_delay,
    default_camera_name,
    describe,
    frame_time,
    natural_key,
    pace_delay,
    sane_fps,
    smoothed_interval,
    to_rgb,
)
from services.errors import SourceUnavailable

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
WAIT_S = 5.0  # an upper bound for the reader thread to get somewhere; never slept


class FakeTime:
    """Monotonic time that moves only when the reader sleeps (or a script says so)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def image(n: int) -> ImageArray:
    return np.full((2, 2, 3), n, np.uint8)


class Script:
    """A fake Reader playing its items: an int is a frame of that grey level, "corrupt" an undecodable frame,
    ("wait", s) moves the fake time on; then it gives `after` on every read ("end", or "corrupt" a millisecond
    apart: a live stream that stays up without a usable frame). `played` is set when the items are used up."""

    def __init__(self, items: list[object], after: str = "end", clock: FakeTime | None = None) -> None:
        self.items: Iterator[object] = iter(items)
        self.after = after
        self.clock = clock
        self.played = threading.Event()
        self.closed = False

    @property
    def fps(self) -> float | None:
        return None

    def read(self) -> Read:
        for item in self.items:
            if isinstance(item, tuple):
                assert self.clock is not None
                self.clock.now += item[1]
                continue
            return ("corrupt", None) if item == "corrupt" else ("frame", image(int(str(item))))
        self.played.set()
        if self.after == "end":
            return "end", None
        if not self.closed:
            time.sleep(0.001)  # a stream that stays up, slowly
        return "corrupt", None

    def close(self) -> None:
        self.closed = True


DOWN = object()  # in an opener's sequence: the stream cannot be opened


def opener(*readers: object) -> Callable[[], Script]:
    """Opens the readers in turn (DOWN: SourceUnavailable)."""
    sequence = iter(readers)

    def open_next() -> Script:
        reader = next(sequence)
        if reader is DOWN:
            raise SourceUnavailable("down")
        assert isinstance(reader, Script)
        return reader

    return open_next


def take_all(source: FrameSource) -> list[Frame]:
    frames = []
    while not source.ended:
        if (frame := source.next(WAIT_S)) is not None:
            frames.append(frame)
    return frames


# The schedules.


def test_the_backoff_doubles_from_one_second_to_thirty() -> None:
    assert [backoff_delay(a) for a in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert backoff_delay(10_000) == BACKOFF_MAX_S  # no overflow after days of retrying


def test_a_file_frame_is_due_at_its_position_and_never_waited_for_when_late() -> None:
    assert pace_delay(0, 25.0, started=100.0, now=100.0) == 0
    assert pace_delay(50, 25.0, started=100.0, now=100.5) == pytest.approx(1.5)
    assert pace_delay(10, 25.0, started=100.0, now=103.0) == 0


def test_a_file_frame_is_stamped_with_video_time() -> None:
    assert frame_time(T0, 0, 25.0) == T0
    assert frame_time(T0, 75, 25.0) == T0 + timedelta(seconds=3)


def test_the_measured_rate_follows_the_frame_intervals_smoothly() -> None:
    assert smoothed_interval(None, 0.04) == 0.04
    assert smoothed_interval(0.04, 0.0) == 0.04  # two frames at once say nothing about the rate
    assert smoothed_interval(0.04, 1.04, weight=0.1) == pytest.approx(0.14)


def test_declared_frame_rates_are_believed_only_when_plausible() -> None:
    assert [sane_fps(v) for v in (25.0, 0.0, -1.0, float("nan"), float("inf"), 90000.0, None)] == [25.0] + [None] * 6


def test_frames_are_converted_to_rgb_and_malformed_ones_refused() -> None:
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[..., 0] = 255  # blue, in OpenCV's order
    rgb = to_rgb(bgr)
    assert rgb is not None and rgb.shape == (2, 3, 3) and (rgb[..., 2] == 255).all() and (rgb[..., 0] == 0).all()
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 2] = 200
    assert (to_rgb(bgra)[..., 0] == 200).all()  # type: ignore[index]
    assert to_rgb(np.full((2, 2), 7, np.uint8)).shape == (2, 2, 3)  # type: ignore[union-attr]
    for bad in (None, np.zeros((0, 0, 3), np.uint8), np.zeros((2, 2, 3), np.float32), np.zeros((2, 2, 2), np.uint8)):
        assert to_rgb(bad) is None


def test_frames_of_a_folder_are_in_natural_order() -> None:
    names = ["f10.jpg", "f2.jpg", "f1.jpg", "a.jpg"]
    assert [p.name for p in sorted(map(Path, names), key=natural_key)] == ["a.jpg", "f1.jpg", "f2.jpg", "f10.jpg"]


def test_camera_names_and_descriptions() -> None:
    assert default_camera_name("0") == "webcam0"
    assert default_camera_name(" 2 ") == "webcam2"
    assert default_camera_name("rtsp://admin:secret@Door.local:554/stream1") == "door.local-554"
    assert default_camera_name("http://10.0.0.5/video.mjpg") == "10.0.0.5"
    assert default_camera_name("/videos/front door.mp4") == "front door"
    assert describe("rtsp://admin:secret@door.local:554/stream1") == "rtsp://door.local:554/stream1"
    assert describe("1") == "webcam 1"


# The hand-over.


def frame(n: int) -> Frame:
    return Frame(n, image(n), T0, 0.0)


def test_a_lossy_handoff_keeps_only_the_newest_frame_and_counts_the_rest() -> None:
    slot = Handoff(lossy=True)
    assert all(slot.put(frame(n)) for n in range(3))
    assert slot.dropped == 2
    assert [f.index for f in [slot.take(0)] if f] == [2]
    assert slot.take(0) is None and not slot.exhausted
    slot.put(frame(3))
    slot.finish()
    assert not slot.exhausted  # the last frame is still to be taken
    assert slot.take(WAIT_S).index == 3  # type: ignore[union-attr]
    assert slot.exhausted and slot.take(WAIT_S) is None  # no waiting once the reader is done


def test_a_blocking_handoff_makes_the_reader_wait_and_drops_nothing() -> None:
    slot = Handoff(lossy=False, depth=2)
    assert slot.put(frame(0)) and slot.put(frame(1))
    third = threading.Thread(target=slot.put, args=(frame(2),))
    third.start()
    third.join(0.05)
    assert third.is_alive()  # no room: the reader waits
    assert slot.take(0).index == 0  # type: ignore[union-attr]
    third.join(WAIT_S)
    assert [slot.take(0).index, slot.take(0).index] == [1, 2]  # type: ignore[union-attr]
    assert slot.dropped == 0
    slot.close()
    assert not slot.put(frame(3)) and slot.exhausted


# Files.


def test_a_file_read_fast_hands_over_every_frame_in_order_and_skips_corrupt_ones() -> None:
    reader = Script([0, 1, "corrupt", 3, 4])
    source = FrameSource("clip", opener(reader), live=False, realtime=False, fps=25.0, clock=lambda: T0)
    frames = take_all(source)
    assert [f.index for f in frames] == [0, 1, 3, 4]  # the corrupt frame keeps its place in the numbering
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 1, 3, 4]
    assert [f.time for f in frames] == [T0 + timedelta(seconds=i / 25) for i in (0, 1, 3, 4)]
    stats = source.stats()
    assert (stats.state, stats.frames_read, stats.frames_corrupt, stats.frames_dropped) == ("ended", 4, 1, 0)
    assert stats.source_fps == 25.0 and source.ended and source.next(WAIT_S) is None
    source.close()
    assert source.stats().state == "ended" and reader.closed


def test_a_file_in_realtime_is_paced_at_its_rate_and_drops_what_the_consumer_misses() -> None:
    clock = FakeTime()
    reader = Script([0, 1, 2, 3, 4])
    source = FrameSource(
        "clip", opener(reader), live=False, fps=4.0, clock=lambda: T0, monotonic=clock.monotonic, sleep=clock.sleep
    )
    assert reader.played.wait(WAIT_S)
    last = source.next(WAIT_S)
    assert clock.sleeps == [0.25] * 4  # each frame waited for its due time
    assert last is not None and (last.index, last.time, last.read_at) == (4, T0 + timedelta(seconds=1), 1.0)
    assert source.stats().frames_dropped == 4 and source.stats().frames_read == 5
    source.close()


def test_a_file_without_a_decodable_frame_is_refused() -> None:
    source = FrameSource("clip", opener(Script(["corrupt", "corrupt"])), live=False, realtime=False)
    with pytest.raises(SourceUnavailable, match=r"^clip.mp4: no frame could be decoded$"):
        source.wait_first_frame(WAIT_S, "clip.mp4")
    assert source.stats().frames_corrupt == 2


# Live sources.


def test_a_lost_stream_is_reopened_with_backoff_and_says_so() -> None:
    clock = FakeTime()
    events: list[str] = []
    back = Script([2, 3], after="corrupt")
    source = FrameSource(
        "door",
        opener(Script([0, 1]), DOWN, DOWN, back),
        live=True,
        clock=lambda: T0,
        on_event=events.append,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    assert back.played.wait(WAIT_S)
    assert clock.sleeps == [1, 2, 4]
    assert events == [
        "camera door: stream lost, reconnecting in 1 s",
        "camera door: stream still down, reconnecting in 2 s",
        "camera door: stream still down, reconnecting in 4 s",
        "camera door: reconnected",
    ]
    newest = source.next(WAIT_S)
    assert newest is not None and newest.index == 3 and newest.time == T0  # numbering goes on across the gap
    stats = source.stats()
    assert (stats.state, stats.reconnects, stats.frames_read) == ("running", 1, 4)
    assert not source.ended  # a live source never ends on its own
    source.close()
    assert source.stats().state == "stopped" and source.ended and back.closed


def test_a_stream_that_keeps_failing_is_retried_ever_more_slowly_until_it_runs_steadily() -> None:
    clock = FakeTime()
    events: list[str] = []
    last = Script([3], after="corrupt")
    steady = Script([2, ("wait", 11.0)], clock=clock)  # runs 11 s before it fails
    source = FrameSource(
        "door",
        opener(Script([0]), Script([1]), steady, last),
        live=True,
        on_event=events.append,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    assert last.played.wait(WAIT_S)
    assert clock.sleeps == [1, 2, 1]
    assert events.count("camera door: reconnected") == 3 and source.stats().reconnects == 3
    source.close()


def test_a_live_source_measures_its_frame_rate() -> None:
    clock = FakeTime()
    reader = Script([0, ("wait", 0.5), 1, ("wait", 0.5), 2], after="corrupt", clock=clock)
    source = FrameSource("door", opener(reader), live=True, monotonic=clock.monotonic, sleep=clock.sleep)
    assert reader.played.wait(WAIT_S)
    assert source.stats().source_fps == pytest.approx(2.0)
    source.close()


def test_a_stream_without_a_first_frame_times_out_and_is_closed() -> None:
    reader = Script([], after="corrupt")
    source = FrameSource("door", opener(reader), live=True)
    with pytest.raises(SourceUnavailable, match=r"^rtsp://door/1: no frame within 0.05 s$"):
        source.wait_first_frame(0.05, "rtsp://door/1")
    assert source.stats().state == "stopped"


def test_closing_stops_a_reconnecting_reader_at_once() -> None:
    source = FrameSource("door", opener(Script([0]), *[DOWN] * 10), live=True)  # real sleeps: 1 s, 2 s, ...
    assert source.next(WAIT_S) is not None
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started < 0.5
    assert source.stats().state == "stopped"


def test_a_failing_event_callback_does_not_stop_the_reader() -> None:
    clock = FakeTime()
    back = Script([1], after="corrupt")

    def broken(message: str) -> None:
        raise RuntimeError(message)

    source = FrameSource(
        "door", opener(Script([0]), back), live=True, on_event=broken, monotonic=clock.monotonic, sleep=clock.sleep
    )
    assert back.played.wait(WAIT_S)
    assert source.stats().reconnects == 1
    source.close()
