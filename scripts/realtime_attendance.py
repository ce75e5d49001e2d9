"""Realtime attendance: cameras, streams and video files -> tracked faces -> attendance events.

  python scripts/realtime_attendance.py SOURCE [SOURCE ...] [--name CAMERA ...] [--gallery NAME]
      [--detector yunet|mtcnn|retinaface] [--every N] [--cooldown S] [--confirm-frames N] [--min-face PX]
      [--detect-mp MP] [--queue|--inline] [--show] [--record OUT.mp4] [--max-seconds S] [--realtime|--fast]
      [--json-events]

SOURCE is a webcam index (0), an rtsp:// or http(s):// stream (MJPEG, HLS), a video file or a folder of
frames. Faces are detected and tracked here; the faces worth embedding go as aligned chips to a worker (or
are embedded in this process with --inline; by default the workers when one answers). Each enrolled person
is logged once per camera within the cooldown (enforced in MongoDB, so two scripts on one camera cannot
double-log), each unknown visitor once per visit. Ctrl-C or SIGTERM stops cleanly; the last line printed is
a JSON summary. Each camera's state and live frame show on the dashboard's Cameras page.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import cv2
from pymongo.errors import PyMongoError

from model.detection import create_detector
from model.errors import FaceregError
from model.types import ImageArray
from scripts.cli import EXIT_BAD_INPUT, parser, run, setup_logging
from scripts.cli_args import POSITIVE, bounded_float, bounded_int
from services.attendance import cameras
from services.attendance.capture import FrameSource, default_camera_name, open_source, prepare_video_backend
from services.attendance.inline import InlineBackend
from services.attendance.realtime import Backend, RealtimeOptions, RealtimeSession, Stats, detector_options, summarise
from services.attendance.recognition import chip_size
from services.attendance.voting import VoteRules
from services.config import Settings, get_settings
from services.context import ServiceContext, open_context
from services.registry.galleries import check_contract, get_gallery
from services.storage.records import as_utc, utcnow
from workers.client import TaskClient
from workers.realtime import QueueBackend


@dataclass
class Camera:
    name: str
    source: FrameSource
    session: RealtimeSession
    recorder: Recorder | None


class Recorder:
    """The annotated video of one camera, opened on its first frame."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self._writer: cv2.VideoWriter | None = None

    def write(self, frame: ImageArray) -> None:
        if self._writer is None:
            h, w = frame.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise OSError(f"cannot write the video {self.path}")
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


def _parser() -> Any:
    cli = parser(__doc__)
    cli.add_argument("sources", nargs="+", metavar="SOURCE")
    cli.add_argument("--name", action="append", default=[], help="camera id, once per SOURCE (default: from it)")
    cli.add_argument("--gallery", help="default: FACEREG_GALLERY")
    cli.add_argument("--detector", choices=["yunet", "mtcnn", "retinaface"], default="yunet")
    cli.add_argument("--every", type=POSITIVE, default=1, help="detect every Nth frame; track in between")
    cli.add_argument(
        "--cooldown", type=bounded_float(0.0, 7 * 24 * 3600.0), help="seconds (FACEREG_ATTENDANCE_COOLDOWN_S)"
    )
    cli.add_argument(
        "--confirm-frames", type=bounded_int(1, 50), default=3, help="agreeing faces before a person is logged"
    )
    cli.add_argument("--min-face", type=bounded_int(8, 4096), default=40, help="smallest face embedded, in pixels")
    cli.add_argument(
        "--detect-mp",
        type=bounded_float(0.05, 16.0),
        default=1.0,
        help="megapixels frames are scaled to for detection (default 1.0; faces are cut from the full frame)",
    )
    mode = cli.add_mutually_exclusive_group()
    mode.add_argument("--queue", dest="mode", action="store_const", const="queue", help="through the workers")
    mode.add_argument("--inline", dest="mode", action="store_const", const="inline", help="in this process")
    cli.add_argument("--show", action="store_true", help="an OpenCV window (needs a display and GUI-capable OpenCV)")
    cli.add_argument("--record", type=Path, metavar="OUT.mp4", help="write the annotated video")
    cli.add_argument("--max-seconds", type=bounded_float(0.0, 1e9), help="stop after this long")
    pace = cli.add_mutually_exclusive_group()
    pace.add_argument(
        "--realtime", dest="fast", action="store_false", default=False, help="files at their frame rate (default)"
    )
    pace.add_argument(
        "--fast", dest="fast", action="store_true", help="files as fast as they can be processed, no frame dropped"
    )
    cli.add_argument(
        "--start-time", type=_aware, help="the time of the first frame, ISO-8601 with its offset (default: now)"
    )
    cli.add_argument("--json-events", action="store_true", help="one JSON line per event on stdout")
    return cli


def _aware(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    if when.utcoffset() is None:
        raise ValueError("a time needs its UTC offset")
    return as_utc(when)


def main() -> int:
    args = _parser().parse_args()
    setup_logging()
    if args.name and len(args.name) != len(args.sources):
        return _refuse(f"--name given {len(args.name)} times for {len(args.sources)} sources (once per SOURCE)")
    settings = get_settings()
    ctx = open_context(settings)
    gallery = get_gallery(ctx, args.gallery or settings.gallery)
    size = chip_size(gallery, settings.model_dir)
    backend_for = _backends(ctx, settings, gallery.name, args)
    if backend_for is None:
        return EXIT_BAD_INPUT
    show = args.show and _can_show()
    stop = threading.Event()
    _on_signals(stop)
    names = args.name or [default_camera_name(s) for s in args.sources]
    prepare_video_backend()
    opened = [
        open_source(spec, realtime=not args.fast, clock=_clock(args.start_time), on_event=_say, name=name)
        for spec, name in zip(args.sources, names, strict=True)
    ]
    cams = [
        _camera(ctx, settings, src, name, gallery.identify_threshold, size, backend_for(), args)
        for src, name in zip(opened, names, strict=True)
    ]
    summaries = _run_all(cams, stop, show)
    print(json.dumps(_summary(cams, summaries)), flush=True)
    failed = [c for c in cams if c.session.fatal is not None]
    for c in failed:
        print(f"error: camera {c.name}: {c.session.fatal.message}", file=sys.stderr)  # type: ignore[union-attr]
    return EXIT_BAD_INPUT if failed else 0


def _clock(start: datetime | None) -> Callable[[], datetime]:
    """The clock of one source: the real one, or one whose first reading is `start` and that runs on from there
    (a file's frames are stamped from its first reading, a stream's at each frame)."""
    if start is None:
        return utcnow
    offset: timedelta | None = None

    def clock() -> datetime:
        nonlocal offset
        now = utcnow()
        if offset is None:
            offset = start - now
        return now + offset

    return clock


def _refuse(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _backends(ctx: ServiceContext, settings: Settings, gallery: str, args: Any) -> Callable[[], Backend] | None:
    """A factory of backends (one per camera): the queue when asked or when a worker answers, else inline."""
    mode = args.mode
    if mode != "inline":
        client = TaskClient(settings)
        online = client.workers_online(timeout=2.0)
        client.close()
        if not online and mode == "queue":
            _refuse("no worker answers: start one (`celery -A workers.worker worker`) or run with --inline")
            return None
        mode = "queue" if online else "inline"
        if mode == "inline":
            _say("no worker answers: faces are embedded in this process (--inline)")
    if mode == "queue":
        return lambda: QueueBackend(TaskClient(settings), gallery, args.cooldown)
    check_contract(get_gallery(ctx, gallery), ctx.pipeline)
    return lambda: InlineBackend(ctx, gallery, args.cooldown)


def _camera(
    ctx: ServiceContext,
    settings: Settings,
    source: FrameSource,
    name: str,
    threshold: float,
    size: int,
    backend: Backend,
    args: Any,
) -> Camera:
    run_id = uuid.uuid4().hex[:12]
    options = RealtimeOptions(
        camera=name,
        run_id=run_id,
        gallery=args.gallery or settings.gallery,
        cooldown_s=args.cooldown if args.cooldown is not None else settings.attendance_cooldown_s,
        every=args.every,
        min_face=args.min_face,
        chip_size=size,
        max_seconds=args.max_seconds,
        rules=VoteRules(confirm=args.confirm_frames, unknown_hits=args.confirm_frames),
        detector=detector_options(args.detect_mp),
        unknown_merge=threshold,
    )
    recorder = None
    if args.record is not None:
        path = args.record if len(args.sources) == 1 else args.record.with_stem(f"{args.record.stem}-{name}")
        recorder = Recorder(path, source.stats().source_fps or 25.0)
    detector = create_detector(args.detector, settings.model_dir)
    session = RealtimeSession(
        source,
        detector,
        backend,
        options,
        on_event=_events_printer(args.json_events),
        on_heartbeat=_publisher(ctx),
        on_frame=_frame_sink(recorder, name, args.show),
    )
    return Camera(name, source, session, recorder)


def _publisher(ctx: ServiceContext) -> Callable[[cameras.Heartbeat, bytes | None], None]:
    def publish(beat: cameras.Heartbeat, jpeg: bytes | None) -> None:
        now = utcnow()
        try:
            if beat.state == "stopped":
                cameras.stop(ctx, beat.camera, beat.run_id, now)
            else:
                cameras.publish(ctx, beat, now, jpeg)
        except (FaceregError, PyMongoError) as exc:  # the dashboard misses a beat; attendance goes on
            log.warning("camera %s: heartbeat not stored: %s", beat.camera, exc)

    return publish


_print_lock = threading.Lock()
log = logging.getLogger("realtime_attendance")


def _events_printer(as_json: bool) -> Callable[[dict[str, object]], None]:
    def show(event: dict[str, object]) -> None:
        with _print_lock:
            if as_json:
                print(json.dumps(event), flush=True)
            else:
                _say(f"{event['time']} {event['camera']}: {event['name']} ({event['similarity']})")

    return show


def _frame_sink(recorder: Recorder | None, name: str, show: bool) -> Callable[[ImageArray], None] | None:
    if recorder is None and not show:
        return None

    def sink(frame: ImageArray) -> None:
        if recorder is not None:
            recorder.write(frame)
        if show:
            cv2.imshow(name, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            cv2.waitKey(1)

    return sink


def _can_show() -> bool:
    gui = [line for line in cv2.getBuildInformation().splitlines() if line.strip().startswith("GUI:")]
    if not gui or "NONE" in gui[0].upper() or not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        _say(
            "--show: no window can be opened (this OpenCV has no GUI support or there is no display); "
            "use --record OUT.mp4 or the dashboard's Cameras page"
        )
        return False
    return True


def _on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():  # asked twice: the operator will not wait for the last answers
            _say(f"{signal.Signals(signum).name} again: exiting now; sightings not yet stored are lost")
            os._exit(128 + signum)
        _say(f"{signal.Signals(signum).name}: stopping (closing every track; again to exit at once)")
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _run_all(cams: list[Camera], stop: threading.Event, show: bool) -> dict[str, Stats]:
    """Each camera in its own thread until it ends or the stop; every one closed cleanly."""
    out: dict[str, Stats] = {}

    def work(cam: Camera) -> None:
        try:
            out[cam.name] = cam.session.run(stop.is_set)
        finally:
            cam.source.close()
            cam.session.backend.close()
            if cam.recorder is not None:
                cam.recorder.close()

    threads = [threading.Thread(target=work, args=(c,), name=f"camera-{c.name}", daemon=True) for c in cams]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(timeout=0.2)
    if show:
        cv2.destroyAllWindows()
    return out


def _summary(cams: list[Camera], stats: dict[str, Stats]) -> dict[str, Any]:
    per = [summarise(c.name, stats.get(c.name) or Stats(), c.source.stats()) for c in cams]
    if len(per) == 1:
        return per[0]
    totals = {
        k: sum(p[k] for p in per)
        for k in (
            "frames_read",
            "frames_processed",
            "frames_dropped",
            "tracks",
            "events",
            "unknown_events",
            "reconnects",
        )
    }
    return {**totals, "cameras": per}


if __name__ == "__main__":
    run(main)
