"""Reading frames with real OpenCV: a video file fast and in realtime, a folder with a corrupt image, sources
that cannot be opened, MJPEG and HLS over real HTTP, and a camera server killed and restarted mid-stream."""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.types import ImageArray
from scripts.mjpeg_server import serve
from services.attendance.capture import Frame, FrameSource, open_source
from services.config import REPO_ROOT
from services.errors import SourceUnavailable

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
FRAMES, FPS, SIZE = 80, 25.0, (320, 240)
BITS, BLOCK = 7, 40  # frame i shows i in binary, one white (1) or black (0) block a bit along the bottom


def picture(i: int) -> np.ndarray:
    bgr = np.full((SIZE[1], SIZE[0], 3), 128, np.uint8)
    cv2.putText(bgr, str(i), (120, 120), cv2.FONT_HERSHEY_SIMPLEX, 2.5, (0, 0, 255), 4)
    for bit in range(BITS):
        bgr[-BLOCK:, bit * BLOCK + 10 : (bit + 1) * BLOCK] = 255 if i >> bit & 1 else 0
    return bgr


def number(image: ImageArray) -> int:
    """The frame number a picture shows (read from its blocks)."""
    blocks = [image[-BLOCK + 5 : -5, bit * BLOCK + 15 : (bit + 1) * BLOCK - 5].mean() for bit in range(BITS)]
    return sum(1 << bit for bit, level in enumerate(blocks) if level > 128)


def write_video(path: Path, frames: int = FRAMES, fourcc: str = "mp4v") -> Path:
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*fourcc), FPS, SIZE)
    for i in range(frames):
        writer.write(picture(i))
    writer.release()
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("capture") / "door.mp4")


def take_all(source: FrameSource) -> list[Frame]:
    frames = []
    while not source.ended:
        if (frame := source.next(5.0)) is not None:
            frames.append(frame)
    return frames


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_file_read_fast_gives_every_frame_in_order_in_video_time(video: Path) -> None:
    with open_source(str(video), realtime=False, clock=lambda: T0) as source:
        assert not source.is_live and source.name == "door"
        frames = take_all(source)
        stats = source.stats()
    assert [f.index for f in frames] == list(range(FRAMES))
    assert [number(f.image) for f in frames] == list(range(FRAMES))
    assert frames[0].image.shape == (240, 320, 3) and frames[0].image.dtype == np.uint8
    r, b = frames[0].image[..., 0].astype(int), frames[0].image[..., 2].astype(int)
    assert ((r > 200) & (b < 60)).sum() > 100 and not ((b > 200) & (r < 60)).any()  # the red number: RGB order
    assert [f.time for f in frames] == [T0 + timedelta(seconds=i / FPS) for i in range(FRAMES)]
    assert (stats.state, stats.frames_read, stats.frames_dropped, stats.source_fps) == ("ended", FRAMES, 0, FPS)


def test_a_file_in_realtime_drops_what_a_slow_consumer_misses(video: Path) -> None:
    started = time.monotonic()
    taken = []
    with open_source(str(video), realtime=True) as source:
        while not source.ended:
            if (frame := source.next(1.0)) is not None:
                taken.append(frame.index)
                time.sleep(0.1)  # a consumer at 10 FPS on a 25 FPS video
        stats = source.stats()
    elapsed = time.monotonic() - started
    assert taken == sorted(taken) and taken[-1] == FRAMES - 1
    assert stats.frames_read == FRAMES and stats.frames_dropped == FRAMES - len(taken)
    assert 20 <= len(taken) <= 45, (len(taken), stats)  # about 10 of every 25
    assert FRAMES / FPS - 0.2 < elapsed < FRAMES / FPS + 1.5  # played at the video's rate


def test_a_folder_skips_and_counts_a_corrupt_image(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (1, 2, 4, 10):
        cv2.imwrite(str(folder / f"f{i}.jpg"), picture(i))
    (folder / "f3.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "notes.txt").write_text("not a frame")
    with open_source(str(folder), realtime=False, fps=10, clock=lambda: T0) as source:
        frames = take_all(source)
        stats = source.stats()
    assert [number(f.image) for f in frames] == [1, 2, 4, 10]  # natural order, the corrupt f3 skipped
    assert [f.index for f in frames] == [0, 1, 3, 4]
    assert frames[-1].time == T0 + timedelta(seconds=0.4)
    assert (stats.frames_read, stats.frames_corrupt, stats.state) == (4, 1, "ended")


def test_sources_that_cannot_be_read_are_refused_at_once_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.mp4").write_text("not a video")
    write_video(tmp_path / "none.mp4", frames=0)
    cases = {
        str(tmp_path / "missing.mp4"): "no such file, folder, camera index or URL",
        str(tmp_path / "empty"): "a folder without image files",
        str(tmp_path / "notes.mp4"): r"cannot be opened \(not a video",
        str(tmp_path / "none.mp4"): "cannot be opened|no frame could be decoded",
        f"http://127.0.0.1:{free_port()}/x.mjpg": r"cannot be opened \(a wrong URL, or the server is down\)",
        "http://user:secret@127.0.0.1:1/x.mjpg": r"^http://127\.0\.0\.1:1/x\.mjpg: ",  # no credentials shown
        "7": "webcam 7: cannot be opened",
    }
    for spec, message in cases.items():
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match=message) as refused:
            open_source(spec)
        assert "\n" not in str(refused.value) and "secret" not in str(refused.value)
        assert time.monotonic() - started < 2.0, spec


def test_frames_arrive_over_http_mjpeg(video: Path) -> None:
    server = serve(video, loop=True)
    try:
        with open_source(f"{server.url}door.mjpg", clock=lambda: T0) as source:
            assert source.is_live and source.name == f"127.0.0.1-{server.server_address[1]}"
            frames = [f for _ in range(30) if (f := source.next(2.0)) is not None]
            stats = source.stats()
    finally:
        server.stop()
    assert len(frames) == 30 and frames[0].image.shape == (240, 320, 3)
    assert [f.index for f in frames] == sorted(f.index for f in frames)
    assert all(f.time == T0 for f in frames)  # live frames: the clock at read
    seen = [number(f.image) for f in frames]
    assert seen == sorted(seen)  # the video plays forward (the server started it with this client)
    assert stats.state == "running" and stats.source_fps is not None and 15 < stats.source_fps < 40


def test_an_hls_playlist_is_read(tmp_path: Path) -> None:
    for segment in range(2):
        write_video(tmp_path / f"s{segment}.ts", frames=25, fourcc="mpg2")
    (tmp_path / "live.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXTINF:1.0,\ns0.ts\n#EXTINF:1.0,\ns1.ts\n#EXT-X-ENDLIST\n"
    )
    handler = functools.partial(QuietFiles, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with open_source(f"http://127.0.0.1:{server.server_address[1]}/live.m3u8") as source:
            frame = source.next(5.0)
    finally:
        server.shutdown()
        server.server_close()
    assert frame is not None and frame.image.shape == (240, 320, 3)


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def camera(video: Path) -> Iterator[CameraProcess]:
    process = CameraProcess(video, free_port())
    yield process
    process.kill()


class CameraProcess:
    """scripts/mjpeg_server.py as a process of its own, to be killed (SIGKILL) and started again."""

    def __init__(self, video: Path, port: int) -> None:
        self.video, self.port = video, port
        self.process: subprocess.Popen[str] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/door.mjpg"

    def start(self) -> None:
        args = [sys.executable, "scripts/mjpeg_server.py", str(self.video), "--port", str(self.port), "--loop"]
        self.process = subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        assert self.process.stdout.readline().startswith("serving ")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def test_a_stream_killed_and_restarted_is_reconnected_without_reopening(camera: CameraProcess) -> None:
    events: list[str] = []
    with open_source(camera.url, on_event=events.append) as source:
        before = [f for _ in range(10) if (f := source.next(2.0)) is not None]
        assert len(before) == 10
        camera.kill()
        killed = time.monotonic()
        while source.stats().state != "reconnecting":
            assert time.monotonic() - killed < 8, source.stats()  # the loss is noticed (EOF, or the read timeout)
            source.next(0.2)
        time.sleep(0.5)
        camera.start()
        after: list[Frame] = []
        while len(after) < 10:
            assert time.monotonic() - killed < 20, (source.stats(), events)
            if (frame := source.next(1.0)) is not None and frame.index > before[-1].index:
                after.append(frame)
        back_after = after[0].read_at - killed
        stats = source.stats()
    name = source.name
    assert stats.reconnects == 1 and stats.state == "running"
    assert events[0] == f"camera {name}: stream lost, reconnecting in 1 s"
    assert events[-1] == f"camera {name}: reconnected"
    assert back_after < 8, back_after  # 0.5 s down, then the 1 s (and at most the 2 s) retry
    assert [f.index for f in before + after] == sorted({f.index for f in before + after})
    print(f"reconnected {back_after:.2f} s after the kill; events: {events}")
