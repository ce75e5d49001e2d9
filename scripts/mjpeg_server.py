"""Serve a video file as an MJPEG stream over HTTP, at the video's frame rate (a stand-in for an IP camera).

  python scripts/mjpeg_server.py VIDEO [--port P] [--host 127.0.0.1] [--loop] [--quality Q]

Like a camera, the server plays one stream that every client joins where it is: playback starts when the
first client connects and runs at the video's frame rate whether or not anyone keeps up (a slow client
misses frames). Each GET (any path) gets `multipart/x-mixed-replace` with one `image/jpeg` part per frame.
With --loop the video restarts at its end; without it the streams end there and later requests get 410.
Prints `serving VIDEO at http://HOST:PORT/` once listening (port 0 picks a free one). Kill it and start it
again on the same port to try a client's reconnection.

The video is decoded by one thread of the server, never per request: OpenCV's FFmpeg backend opens
captures under a process-wide lock, so a request handler opening the file would wait for an OpenCV client
of the same process that is itself waiting for the handler's answer.
"""

from __future__ import annotations

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

from scripts.cli import parser, run

BOUNDARY = "frame"
DEFAULT_FPS = 25.0
WAIT_S = 0.5  # how often a waiting thread looks whether the server stopped


def video_fps(capture: cv2.VideoCapture) -> float:
    """The frame rate the file declares, or DEFAULT_FPS where it declares none that makes sense."""
    fps = float(capture.get(cv2.CAP_PROP_FPS))
    return fps if 0 < fps <= 240 else DEFAULT_FPS


class Broadcast:
    """The newest JPEG of the video being played, numbered, for every client to pick up."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.number = -1  # of the newest frame; -1: none yet
        self.jpeg = b""
        self.done = False  # the video ended (without --loop) or the server stopped

    def publish(self, jpeg: bytes) -> None:
        with self.changed:
            self.number += 1
            self.jpeg = jpeg
            self.changed.notify_all()

    def finish(self) -> None:
        with self.changed:
            self.done = True
            self.changed.notify_all()

    def after(self, number: int) -> tuple[int, bytes] | None:
        """The first frame newer than `number` (waiting for it); None once the stream is over."""
        with self.changed:
            while self.number <= number and not self.done:
                self.changed.wait(WAIT_S)
            return None if self.done else (self.number, self.jpeg)


class MjpegServer(ThreadingHTTPServer):
    """An HTTP server streaming one video; `stop()` also cuts the streams already open (as a killed camera)."""

    daemon_threads = True

    def __init__(self, capture: cv2.VideoCapture, address: tuple[str, int], loop: bool, quality: int) -> None:
        super().__init__(address, StreamHandler)
        self.loop = loop
        self.quality = quality
        self.frames = Broadcast()
        self.watched = threading.Event()  # playback starts with the first client
        self.player = threading.Thread(target=self.play, args=(capture,), name="mjpeg-player", daemon=True)
        self.player.start()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"

    def play(self, capture: cv2.VideoCapture) -> None:
        """Decode and publish the frames at the video's rate, from the first client's request on."""
        try:
            while not self.watched.wait(WAIT_S):
                if self.frames.done:
                    return
            period = 1.0 / video_fps(capture)
            due = time.monotonic()
            while not self.frames.done:
                ok, image = capture.read()
                if not ok and self.loop and capture.set(cv2.CAP_PROP_POS_FRAMES, 0):
                    ok, image = capture.read()
                if not ok:
                    return
                encoded, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
                if encoded:
                    self.frames.publish(jpeg.tobytes())
                due = max(due + period, time.monotonic() - period)  # a slow decode is not caught up in a burst
                time.sleep(max(0.0, due - time.monotonic()))
        finally:
            capture.release()
            self.frames.finish()

    def stop(self) -> None:
        """Stop listening and end every open stream."""
        self.frames.finish()
        self.shutdown()
        self.server_close()


class StreamHandler(BaseHTTPRequestHandler):
    server: MjpegServer

    def do_GET(self) -> None:
        if self.server.frames.done:
            self.send_error(410, "the video has ended")
            return
        self.server.watched.set()
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        number = -1
        try:
            while (frame := self.server.frames.after(number)) is not None:
                number, jpeg = frame
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                self.wfile.write(head.encode("ascii") + jpeg + b"\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request on stderr is noise for a test camera


def serve(
    video: str | Path, host: str = "127.0.0.1", port: int = 0, loop: bool = False, quality: int = 80
) -> MjpegServer:
    """Start serving `video` from background threads; the caller stops it with `server.stop()`.

    Raises FileNotFoundError for a missing file, ValueError for one that is not a video, OSError when the
    address cannot be bound."""
    path = Path(video)
    if not path.is_file():
        raise FileNotFoundError(2, "No such file", str(path))
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened() or not capture.grab() or not capture.set(cv2.CAP_PROP_POS_FRAMES, 0):
        capture.release()
        raise ValueError(f"{path}: cannot be decoded as video")
    try:
        server = MjpegServer(capture, (host, port), loop, quality)
    except OSError:
        capture.release()
        raise
    threading.Thread(target=server.serve_forever, name="mjpeg-server", daemon=True).start()
    return server


def main() -> int:
    cli = parser(__doc__)
    cli.add_argument("video", type=Path)
    cli.add_argument("--host", default="127.0.0.1")
    cli.add_argument("--port", type=int, default=8081, help="0 picks a free port (default 8081)")
    cli.add_argument("--loop", action="store_true", help="restart the video at its end")
    cli.add_argument("--quality", type=int, default=80, choices=range(1, 101), metavar="1-100", help="JPEG quality")
    args = cli.parse_args()
    try:
        server = serve(args.video, args.host, args.port, args.loop, args.quality)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a missing file, an address in use
        where = exc.filename or f"{args.host}:{args.port}"
        print(f"error: {exc.strerror or exc}: {where}", file=sys.stderr)
        return 2
    print(f"serving {args.video} at {server.url}", flush=True)
    try:
        server.player.join()  # the video ended (without --loop): let the streams finish, then exit
        time.sleep(WAIT_S)
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    run(main)
