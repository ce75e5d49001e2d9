"""Frames from a webcam, an RTSP/HTTP stream (MJPEG, HLS), a video file or a folder of images, read robustly.

One reader thread per source decodes the frames (BGR -> RGB) and hands them over through a `Handoff`. A live
source (webcam, URL), and a file played in realtime, keep only the newest frame: a frame replaced before the
consumer took it is dropped and counted, never queued up. A file read fast hands over every frame, the reader
waiting for the consumer. A live stream that fails (no frame, or none within the read timeout) is reopened with
backoff (1 s doubling to 30 s; back to 1 s once it has run steadily for 10 s) for as long as the source is
open, saying so through `on_event`; a file or folder ends. A frame that cannot be decoded is skipped and
counted.

Streams are opened with OpenCV's FFmpeg backend and its open and read timeouts, so a dead stream never hangs a
reader for more than a few seconds. That backend opens captures under a process-wide lock: while one source
waits for a host that does not answer, another source of the same process cannot (re)open either.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import cv2
import numpy as np
import numpy.typing as npt

from model.errors import InvalidImage
from model.image_io import IMAGE_SUFFIXES, load_image
from model.types import ImageArray
from services.errors import SourceUnavailable
from services.storage.records import utcnow

log = logging.getLogger(__name__)

OPEN_TIMEOUT_MS = 5000
READ_TIMEOUT_MS = 5000
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
STEADY_S = 10.0  # a stream that ran this long before failing is retried from the first delay again
FOLDER_FPS = 25.0
MAX_FPS = 240.0  # a declared rate above this (or none) is not believed
FAST_DEPTH = 2  # frames a file read fast decodes ahead of its consumer
CLOSE_WAIT_S = 1.0
RATE_WEIGHT = 0.1  # of each new interval in a live source's measured frame rate

State = Literal["connecting", "running", "reconnecting", "ended", "stopped"]
Status = Literal["frame", "corrupt", "end"]  # what one read gave: a frame, an undecodable one, or no more
Read = tuple[Status, ImageArray | None]


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: its index in the source (0-based; dropped and corrupt frames count), RGB pixels, its
    time (video time for a file, the clock at read for a live source) and `read_at`, the monotonic time it
    became available (decoded; for a file played in realtime, when it fell due)."""

    index: int
    image: ImageArray
    time: datetime
    read_at: float


@dataclass(frozen=True, slots=True)
class CaptureStats:
    state: str  # "connecting" | "running" | "reconnecting" | "ended" | "stopped"
    frames_read: int  # decoded, dropped ones included
    frames_dropped: int  # decoded but replaced by a newer frame before the consumer took them
    frames_corrupt: int  # could not be decoded: skipped
    reconnects: int  # times a lost live stream came back
    source_fps: float | None  # a file's (or folder's) rate; a live source's measured rate


class Reader(Protocol):
    """An opened source, read by one thread at a time."""

    @property
    def fps(self) -> float | None: ...  # the rate the source declares, if any

    def read(self) -> Read: ...

    def close(self) -> None: ...


# Pure helpers: the schedules and conversions, testable without a clock or a camera.


def backoff_delay(attempt: int, first_s: float = BACKOFF_FIRST_S, max_s: float = BACKOFF_MAX_S) -> float:
    """Seconds to wait before reconnection attempt `attempt` (0-based): 1, 2, 4, 8, 16, 30, 30, ..."""
    return min(max_s, first_s * 2.0 ** min(attempt, 32))


def pace_delay(index: int, fps: float, started: float, now: float) -> float:
    """Seconds until frame `index` of a file played at `fps` from monotonic time `started` is due (0: late)."""
    return max(0.0, started + index / fps - now)


def frame_time(started_at: datetime, index: int, fps: float) -> datetime:
    """The video time of a file's frame: its start plus its position."""
    return started_at + timedelta(seconds=index / fps)


def smoothed_interval(previous: float | None, interval: float, weight: float = RATE_WEIGHT) -> float | None:
    """An exponential moving average of the time between frames (`previous` None: the first interval)."""
    if interval <= 0:
        return previous
    return interval if previous is None else previous + weight * (interval - previous)


def sane_fps(value: float | None) -> float | None:
    """A declared frame rate, or None where it is missing or absurd (0, NaN, 90000)."""
    return value if value is not None and math.isfinite(value) and 0 < value <= MAX_FPS else None


def to_rgb(image: npt.NDArray[Any] | None) -> ImageArray | None:
    """OpenCV's BGR, BGRA or grey frame as RGB; None for an empty or malformed one (a corrupt frame)."""
    if image is None or image.size == 0 or image.dtype != np.uint8:
        return None
    if image.ndim == 2:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2RGB), dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        return None
    code = cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGB
    return np.asarray(cv2.cvtColor(image, code), dtype=np.uint8)


def natural_key(path: Path) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting frame_2.jpg before frame_10.jpg."""
    parts = re.split(r"(\d+)", path.name)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p)


def is_url(spec: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", spec) is not None


def describe(spec: str) -> str:
    """The source as messages show it: a URL without its credentials."""
    spec = spec.strip()
    if spec.isdigit():
        return f"webcam {int(spec)}"
    if is_url(spec):
        parts = urlsplit(spec)
        return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return spec


def default_camera_name(spec: str) -> str:
    """A camera id for a source: "webcam0", the host of a URL (with its port when one is given), the stem of a
    video file, the name of a folder."""
    spec = spec.strip()
    if spec.isdigit():
        return f"webcam{int(spec)}"
    if is_url(spec):
        parts = urlsplit(spec)
        host = parts.hostname or "stream"
        try:
            port = parts.port
        except ValueError:
            port = None
        return host if port is None else f"{host}-{port}"
    path = Path(spec).expanduser()
    if path.is_dir():
        return path.resolve().name or "frames"
    return path.stem or path.name


def prepare_video_backend() -> None:
    """Call before the first source is opened. Silences OpenCV's and FFmpeg's own warnings on stderr (each
    failed reconnection prints a few; the reader's events say what matters), and reads RTSP over TCP unless
    OPENCV_FFMPEG_CAPTURE_OPTIONS says otherwise: over UDP a camera on a busy or wireless network loses
    packets, and the frames come out smeared, which no face recogniser survives."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read when FFmpeg is first used
    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


# Readers.


class VideoReader:
    """A cv2.VideoCapture (a file, a stream or a camera)."""

    def __init__(self, capture: cv2.VideoCapture) -> None:
        self.capture = capture

    @property
    def fps(self) -> float | None:
        return sane_fps(float(self.capture.get(cv2.CAP_PROP_FPS)))

    def read(self) -> Read:
        ok, image = self.capture.read()
        if not ok:
            return "end", None
        rgb = to_rgb(np.asarray(image) if image is not None else None)
        return ("frame", rgb) if rgb is not None else ("corrupt", None)

    def close(self) -> None:
        self.capture.release()


class FolderReader:
    """The image files of a folder, in natural order, decoded by the project's image loader."""

    def __init__(self, paths: list[Path], fps: float) -> None:
        self.paths = paths
        self.position = 0
        self._fps = fps

    @property
    def fps(self) -> float | None:
        return self._fps

    def read(self) -> Read:
        if self.position >= len(self.paths):
            return "end", None
        path = self.paths[self.position]
        self.position += 1
        try:
            return "frame", load_image(path)
        except (InvalidImage, OSError) as exc:
            log.debug("%s: skipped: %s", path, exc)
            return "corrupt", None

    def close(self) -> None:
        self.position = len(self.paths)


def open_capture(target: str | int, what: str, why: str, camera: bool = False) -> VideoReader:
    """A VideoCapture on a stream or file (FFmpeg, with its timeouts) or on a camera (an index or a device path,
    through the camera backend, where FFmpeg's timeouts do not apply); SourceUnavailable, with `why` (the likely
    reason), if it does not open."""
    if camera:
        capture = cv2.VideoCapture(target) if isinstance(target, int) else cv2.VideoCapture(target, cv2.CAP_V4L2)
    else:
        timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
        capture = cv2.VideoCapture(target, cv2.CAP_FFMPEG, timeouts)
    if not capture.isOpened():
        capture.release()
        raise SourceUnavailable(f"{what}: cannot be opened ({why})")
    return VideoReader(capture)


def folder_images(folder: Path, what: str) -> list[Path]:
    """The image files of a folder in natural order; SourceUnavailable if it cannot be listed or holds none."""
    try:
        paths = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
        images = sorted((p for p in paths if p.is_file()), key=natural_key)
    except OSError as exc:
        raise SourceUnavailable(f"{what}: cannot be read ({exc.strerror or exc})") from exc
    if not images:
        raise SourceUnavailable(f"{what}: a folder without image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return images


def check_readable(path: Path, what: str) -> None:
    """SourceUnavailable for a file that cannot be opened (OpenCV would only say it is no video)."""
    try:
        path.open("rb").close()
    except OSError as exc:
        raise SourceUnavailable(f"{what}: cannot be read ({exc.strerror or exc})") from exc


@dataclass(frozen=True, slots=True)
class Plan:
    """How to open a source: its reader, whether it is live, and a file's frame rate."""

    opener: Callable[[], Reader]
    live: bool
    fps: float | None


def plan_source(spec: str, fps: float | None) -> Plan:
    """Classify `spec` and check what can be checked without opening it (SourceUnavailable otherwise)."""
    spec = spec.strip()
    what = describe(spec)
    if spec.isdigit():
        index = int(spec)
        return Plan(lambda: open_capture(index, what, "no such camera, or it is busy", camera=True), True, None)
    if is_url(spec):
        return Plan(lambda: open_capture(spec, what, "a wrong URL, or the server is down"), True, None)
    path = Path(spec).expanduser()
    if path.is_dir():
        images = folder_images(path, what)
        rate = fps or FOLDER_FPS
        return Plan(lambda: FolderReader(images, rate), False, rate)
    if path.is_file():
        check_readable(path, what)
        if path.suffix.lower() in IMAGE_SUFFIXES:
            rate = fps or FOLDER_FPS
            return Plan(lambda: FolderReader([path], rate), False, rate)
        reader = open_capture(str(path), what, "not a video, or a codec this OpenCV lacks")
        return Plan(lambda: reader, False, fps or reader.fps or FOLDER_FPS)
    if path.exists():  # a device node such as /dev/video0
        return Plan(lambda: open_capture(str(path), what, "not a camera, or it is busy", camera=True), True, None)
    raise SourceUnavailable(f"{what}: no such file, folder, camera index or URL")


# The hand-over between the reader thread and the consumer.


class Handoff:
    """Frames from the reader thread to the consumer. `lossy`: at most `depth` frames wait and a new one
    replaces the oldest (counted in `dropped`); otherwise the reader waits for room."""

    def __init__(self, lossy: bool, depth: int = 1) -> None:
        self.lossy = lossy
        self.depth = depth
        self.dropped = 0
        self._frames: deque[Frame] = deque()
        self._changed = threading.Condition()
        self._finished = False  # the reader is done: what waits is still taken
        self._closed = False  # the consumer is done: nothing more is taken

    def put(self, frame: Frame) -> bool:
        """Hand `frame` over; False once closed (the reader should stop)."""
        with self._changed:
            if self.lossy:
                while len(self._frames) >= self.depth:
                    self._frames.popleft()
                    self.dropped += 1
            else:
                self._changed.wait_for(lambda: len(self._frames) < self.depth or self._closed)
            if self._closed:
                return False
            self._frames.append(frame)
            self._changed.notify_all()
            return True

    def take(self, timeout_s: float) -> Frame | None:
        """The oldest waiting frame (in lossy mode with depth 1, the newest read); None if none comes within
        `timeout_s` or the reader is done."""
        with self._changed:
            self._changed.wait_for(lambda: self._frames or self._finished, max(0.0, timeout_s))
            if not self._frames:
                return None
            frame = self._frames.popleft()
            self._changed.notify_all()
            return frame

    def finish(self) -> None:
        """The reader ends: consumers stop waiting once the frames left are taken."""
        with self._changed:
            self._finished = True
            self._changed.notify_all()

    def close(self) -> None:
        """The consumer ends: waiting frames are discarded and the reader's next `put` fails."""
        with self._changed:
            self._finished = self._closed = True
            self._frames.clear()
            self._changed.notify_all()

    @property
    def exhausted(self) -> bool:
        with self._changed:
            return self._finished and not self._frames


# The source.

_reading: set[FrameSource] = set()  # sources whose reader thread runs
_reading_lock = threading.Lock()


@atexit.register
def _stop_readers() -> None:
    """At exit, stop every reader and let it leave OpenCV: a thread still inside a read when the interpreter
    finalises aborts the process ("terminate called without an active exception")."""
    with _reading_lock:
        sources = list(_reading)
    for source in sources:
        source._halt()
    for source in sources:
        source._thread.join(READ_TIMEOUT_MS / 1000 + 1)


class FrameSource:
    """Frames of one source, read by a thread of its own (see the module docstring); `open_source` makes one.

    `open_reader` opens the source: it is called once, and again for each reconnection of a live one (raising
    SourceUnavailable while the source is down). `monotonic` and `sleep` are injectable for tests; the default
    sleep returns early once the source is closed."""

    def __init__(
        self,
        name: str,
        open_reader: Callable[[], Reader],
        *,
        live: bool,
        realtime: bool = True,
        fps: float | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_event: Callable[[str], None] = lambda message: None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.name = name
        self.is_live = live
        self._open_reader = open_reader
        self._pace = realtime and not live
        self._clock = clock
        self._on_event = on_event
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._handoff = Handoff(lossy=live or realtime, depth=1 if live or realtime else FAST_DEPTH)
        self._first = threading.Event()  # the first frame was read, or the reader ended without one
        self._lock = threading.Lock()
        self._state: State = "connecting"
        self._read = self._corrupt = self._reconnects = 0
        self._interval: float | None = None  # a live source's smoothed time between frames
        self._last = 0.0  # monotonic time of its latest frame
        reader = open_reader()
        self._fps = None if live else fps or reader.fps or FOLDER_FPS
        self._started_at = clock()
        self._thread = threading.Thread(target=self._run, args=(reader,), name=f"capture-{name}", daemon=True)
        with _reading_lock:
            _reading.add(self)
        self._thread.start()

    def next(self, timeout_s: float = 1.0) -> Frame | None:
        """The newest unread frame (every frame, in order, for a file read fast); None if none comes within
        `timeout_s` or the source has ended."""
        return self._handoff.take(timeout_s)

    @property
    def ended(self) -> bool:
        """A file or folder is exhausted and its last frame taken, or the source was closed."""
        return self._handoff.exhausted

    def stats(self) -> CaptureStats:
        with self._lock:
            rate = 1.0 / self._interval if self._interval else None
            fps = rate if self.is_live else self._fps
            return CaptureStats(self._state, self._read, self._handoff.dropped, self._corrupt, self._reconnects, fps)

    def wait_first_frame(self, timeout_s: float, what: str | None = None) -> None:
        """Return once a first frame was read; SourceUnavailable (the source closed) if none comes in time.
        `what`: the source as the message names it (default: its name)."""
        arrived = self._first.wait(timeout_s)
        with self._lock:
            read = self._read
        if read:
            return
        self.close()
        what = what or self.name
        if arrived:
            raise SourceUnavailable(f"{what}: no frame could be decoded")
        raise SourceUnavailable(f"{what}: no frame within {timeout_s:g} s")

    def close(self) -> None:
        """Stop reading. Returns within about a second; a reader blocked in a read of a stalled stream ends when
        the read times out, releasing the capture itself (and the process waits for it at exit)."""
        self._halt()
        self._thread.join(CLOSE_WAIT_S)
        self._set_state("stopped", unless="ended")

    def _halt(self) -> None:
        self._stop.set()
        self._handoff.close()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # The reader thread.

    def _run(self, reader: Reader | None) -> None:
        index = 0  # of the next frame: dropped and corrupt frames count
        attempt = 0  # reconnection attempts since the stream last ran steadily
        lost = False  # the stream was just lost (else: a reconnection attempt just failed)
        connected = 0.0  # monotonic time of the first frame since the stream (re)connected
        started: float | None = None  # monotonic time a paced file's frame 0 was (or would have been) due
        try:
            while not self._stop.is_set():
                if reader is None:
                    reader = self._reconnect(attempt, lost)
                    attempt, lost = attempt + 1, False
                    continue
                status, image = reader.read()
                now = self._monotonic()
                if status == "end":
                    reader.close()
                    reader = None
                    if not self.is_live:
                        self._set_state("ended")
                        return
                    if self._set_state("reconnecting"):
                        lost = True
                        # A stream that keeps failing soon after it comes back is retried ever more slowly.
                        attempt = 0 if now - connected >= STEADY_S else attempt
                    continue
                position, index = index, index + 1
                if status == "corrupt" or image is None:
                    with self._lock:
                        self._corrupt += 1
                    continue
                if self._count_frame(now):
                    connected = now
                if self._pace and self._fps:
                    started = now - position / self._fps if started is None else started
                    delay = pace_delay(position, self._fps, started, now)
                    if delay:
                        self._sleep(delay)
                        now = self._monotonic()
                when = frame_time(self._started_at, position, self._fps) if self._fps else self._clock()
                if not self._handoff.put(Frame(position, image, when, now)):
                    return
        except Exception:  # a bug or a backend failure: the source ends, with the traceback in the log
            log.exception("camera %s: the reader failed", self.name)
            self._set_state("ended", unless="stopped")
        finally:
            if reader is not None:
                reader.close()
            self._handoff.finish()
            self._first.set()
            with _reading_lock:
                _reading.discard(self)

    def _count_frame(self, now: float) -> bool:
        """Count a decoded frame; True if it is the first since the source (re)connected (after a loss: a
        reconnection)."""
        with self._lock:
            state, self._read = self._state, self._read + 1
            if self.is_live:
                if state == "running":  # the gap across a reconnection is no frame interval
                    self._interval = smoothed_interval(self._interval, now - self._last)
                self._last = now
            if state == "running":
                return False
            self._state = "running"
            if state == "reconnecting":
                self._reconnects += 1
        self._first.set()
        if state == "reconnecting":
            self._event(f"camera {self.name}: reconnected")
        return True

    def _reconnect(self, attempt: int, lost: bool) -> Reader | None:
        """Wait out the backoff, then try to reopen the stream (None: still down, or closed meanwhile)."""
        delay = backoff_delay(attempt)
        what = "stream lost" if lost else "stream still down"
        self._event(f"camera {self.name}: {what}, reconnecting in {delay:g} s")
        self._sleep(delay)
        if self._stop.is_set():
            return None
        try:
            return self._open_reader()
        except SourceUnavailable:
            return None

    def _set_state(self, state: State, unless: State | None = None) -> bool:
        """Move to `state` (not from `unless`); True if the state changed."""
        with self._lock:
            if self._state in (state, unless):
                return False
            self._state = state
            return True

    def _event(self, message: str) -> None:
        try:
            self._on_event(message)
        except Exception:  # the caller's callback must not kill the reader
            log.exception("camera %s: on_event failed", self.name)


def open_source(
    spec: str,
    *,
    realtime: bool = True,
    fps: float | None = None,
    clock: Callable[[], datetime] = utcnow,
    first_frame_timeout_s: float = 15.0,
    on_event: Callable[[str], None] = lambda message: None,
    name: str | None = None,
) -> FrameSource:
    """Open a source and wait for its first frame.

    `spec`: a webcam index ("0"), an rtsp:// or http(s):// stream (MJPEG, HLS, ...), a video file, a folder of
    image files (natural order) or one image. `realtime` paces a file at its frame rate (`fps` for a folder,
    default 25; `fps` also overrides a file's), dropping what the consumer does not take in time; otherwise
    every frame is handed over. `name` (default `default_camera_name(spec)`) is what `on_event` messages say.
    Raises SourceUnavailable, with one line, for a missing or undecodable file, a stream or camera that does not
    open, or a source that delivers no frame within `first_frame_timeout_s`."""
    plan = plan_source(spec, fps)
    source = FrameSource(
        name or default_camera_name(spec),
        plan.opener,
        live=plan.live,
        realtime=realtime,
        fps=plan.fps,
        clock=clock,
        on_event=on_event,
    )
    source.wait_first_frame(first_frame_timeout_s, describe(spec))
    return source
