"""`benchmark.py decode`: time, peak memory and outcome of `verify_faces.py` on hostile images.

Each generated image is paired with a real LFW face and verified in a child process of its own, as an
operator would run it. The child is watched every 0.1 s and its process group killed once its resident
memory passes a ceiling (the code before the fix grew to 23 GB on the thin PNG), or after a timeout;
its peak resident memory is its own high-water mark (VmHWM) as last seen while it ran, every 0.1 s.
`--code-dir` measures another tree as well (the code before the fix) with this Python.

It also measures what the MTCNN detector itself costs at the working sizes detection may use (a fresh
child per size, the detector warmed first), which is where `DetectorOptions.max_pixels` comes from.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from model.detection import create_detector
from model.image_io import load_image
from services.config import REPO_ROOT, Settings
from services.engine import configure_threads

POLL_S = 0.1
# The face every hostile image is paired with, and the photo the large images are made of (same person).
PAIR = ("Aaron_Peirsol", 2)
FACE = ("Aaron_Peirsol", 1)


@dataclass(frozen=True, slots=True)
class ChildRun:
    """One child process: exit code, wall time, peak resident memory, and what it printed."""

    exit_code: int
    seconds: float
    peak_rss_mib: float
    killed_at_s: float | None  # set when the watcher killed it
    killed_for: str  # "memory" or "time" when killed
    stdout: str
    stderr: str

    @property
    def outcome(self) -> str:
        """The JSON result, the one-line error, or the kill."""
        if self.killed_at_s is not None:
            return f"killed at {self.killed_at_s:.1f} s (over the {self.killed_for} limit)"
        lines = (self.stdout if self.exit_code == 0 else self.stderr).strip().splitlines()
        return lines[-1] if lines else f"exit {self.exit_code}, no output"


def memory_bytes(pid: int | str = "self") -> tuple[int, int]:
    """(VmRSS, VmHWM) of a live process in bytes; (0, 0) once it is gone or a zombie.

    VmHWM is the peak of the process's own memory since its exec. The kernel's ru_maxrss is not: exec keeps
    the peak of the memory the child was forked with, so under a large parent (a long pytest session) every
    child would report at least the parent's size."""
    found = {"VmRSS:": 0, "VmHWM:": 0}
    try:
        with Path(f"/proc/{pid}/status").open(encoding="ascii") as status:
            for line in status:
                if line[:6] in found:
                    found[line[:6]] = int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found["VmRSS:"], found["VmHWM:"]


def run_measured(
    cmd: Sequence[str], env: dict[str, str], cwd: Path, kill_above_mib: float, timeout_s: float
) -> ChildRun:
    """Run `cmd` in a session of its own; kill its process group past `kill_above_mib` or `timeout_s`."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.monotonic()
        proc = subprocess.Popen(list(cmd), env=env, cwd=cwd, stdout=out, stderr=err, start_new_session=True)
        exited = threading.Event()
        killed: list[tuple[float, str]] = []
        peak = [0]

        def watch() -> None:
            while not exited.wait(POLL_S):
                elapsed = time.monotonic() - start
                rss, hwm = memory_bytes(proc.pid)
                peak[0] = max(peak[0], hwm)
                over = "memory" if rss > kill_above_mib * 2**20 else ""
                over = over or ("time" if elapsed > timeout_s else "")
                if over:
                    killed.append((elapsed, over))
                    os.killpg(proc.pid, signal.SIGKILL)
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        # Wait without reaping, so the pid (and process group) cannot be reused while the watcher may kill it.
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        seconds = time.monotonic() - start
        exited.set()
        watcher.join()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        out.seek(0)
        err.seek(0)
        return ChildRun(
            exit_code=proc.returncode,
            seconds=round(seconds, 2),
            peak_rss_mib=round((peak[0] or usage.ru_maxrss * 1024) / 2**20, 1),  # ru_maxrss: KiB on Linux
            killed_at_s=round(killed[0][0], 1) if killed else None,
            killed_for=killed[0][1] if killed else "",
            stdout=out.read(),
            stderr=err.read(),
        )


# --- the hostile images ----------------------------------------------------------------------------


def _png(path: Path, width: int, height: int, row: bytes, mode: int = 0) -> None:
    """A PNG of `height` identical rows, compressed as it is written (a bomb costs no memory to make).

    `mode` is the PNG colour type: 0 grey, 2 RGB (8 bits per sample)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    z = zlib.compressobj(9)
    line = b"\x00" + row
    idat = b"".join(z.compress(line) for _ in range(height)) + z.flush()
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, mode, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _face_scaled(face: Path, side: int) -> Image.Image:
    with Image.open(face) as img:
        return img.convert("RGB").resize((side, side), Image.Resampling.BILINEAR)


def hostile_images(folder: Path, face: Path) -> dict[str, tuple[Path, str]]:
    """Generate the corpus into `folder`: name -> (path, what it is)."""
    folder.mkdir(parents=True, exist_ok=True)
    corpus = {
        "thin.png": "16x187,500 grey PNG (3 MP, a sliver)",
        "big.jpg": "7000x7000 JPEG of an LFW face (49 MP)",
        "bomb.png": "20000x20000 black PNG (400 MP declared, a decompression bomb)",
        "flat.png": "7000x7000 black PNG (49 MP, under the pixel limit, decoded in full)",
        "big.webp": "4000x4000 WebP of an LFW face (16 MP, the largest WebP the decode budget admits)",
    }
    paths = {name: folder / name for name in corpus}
    if not paths["thin.png"].exists():
        _png(paths["thin.png"], 16, 187_500, bytes([128]) * 16)
    if not paths["bomb.png"].exists():
        _png(paths["bomb.png"], 20_000, 20_000, bytes(20_000))
    if not paths["flat.png"].exists():
        _png(paths["flat.png"], 7000, 7000, bytes(7000 * 3), mode=2)
    if not paths["big.jpg"].exists():
        _face_scaled(face, 7000).save(paths["big.jpg"], quality=85)
    if not paths["big.webp"].exists():
        _face_scaled(face, 4000).save(paths["big.webp"], quality=80, method=0)
    return {name: (paths[name], what) for name, what in corpus.items()}


# --- the runs ------------------------------------------------------------------------------------


def child_env(settings: Settings, roots: Sequence[Path], code_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `verify_faces.py` child running the tree at `code_dir` on the shared models."""
    return {
        **os.environ,
        "PYTHONPATH": str(code_dir),  # ahead of the editable install of this tree
        "FACEREG_MODEL": "mobilefacenet",
        "FACEREG_TORCH_THREADS": "1",
        "FACEREG_MODEL_DIR": os.pathsep.join(str(p) for p in settings.model_dir),
        "FACEREG_DATASETS": str(settings.datasets),
        "FACEREG_INPUT_ROOTS": os.pathsep.join(str(r) for r in roots),
        **extra,
    }


def verify(code_dir: Path, env: dict[str, str], a: Path, b: Path, kill_above_mib: float, timeout_s: float) -> ChildRun:
    cmd = [sys.executable, str(code_dir / "scripts" / "verify_faces.py"), str(a), str(b)]
    return run_measured(cmd, env, code_dir, kill_above_mib, timeout_s)


def measure_one(code_dir: Path, env: dict[str, str], image: Path, pair: Path, ceiling_mib: float) -> dict[str, Any]:
    run = verify(code_dir, env, image, pair, ceiling_mib, timeout_s=600)
    killed = f">{ceiling_mib / 1024:g} GiB (killed at {run.killed_at_s} s)" if run.killed_for == "memory" else ""
    peak = killed or f"{run.peak_rss_mib:.0f} MiB"
    return {
        "exit_code": run.exit_code,
        "seconds": run.seconds,
        "peak_rss_mib": run.peak_rss_mib,
        "peak": peak,
        "outcome": run.outcome,
        "summary": f"exit {run.exit_code}, {run.seconds} s, {peak}",
    }


# --- the detector alone ---------------------------------------------------------------------------

# (side of a square working image, its content): LFW faces tiled at 250 px, noise, 40 px faces tiled.
DETECTION_CASES = [(1024, "faces"), (1448, "faces"), (2048, "faces"), (1024, "noise"), (2048, "noise")]
DETECTION_CASES += [(1024, "40 px faces"), (1448, "40 px faces")]


def detection_image(face: np.ndarray, side: int, kind: str) -> np.ndarray:
    if kind == "noise":
        return np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    tile = face if kind == "faces" else np.asarray(Image.fromarray(face[40:210, 40:210]).resize((40, 40)))
    reps = side // tile.shape[0] + 1
    return np.ascontiguousarray(np.tile(tile, (reps, reps, 1))[:side, :side])


def _hwm_rss_mib() -> tuple[float, float]:
    rss, hwm = memory_bytes()
    return hwm / 2**20, rss / 2**20


def detect_one(settings: Settings, side: int, kind: str) -> dict[str, Any]:
    """(In a fresh process) the memory and time MTCNN takes on one side x side image beyond its warm state."""
    configure_threads(settings)
    detector = create_detector("mtcnn", settings.model_dir)
    face = load_image(lfw_path(settings, *FACE))
    detector.detect(face)
    image = detection_image(face, side, kind)
    _, rss = _hwm_rss_mib()
    start = time.monotonic()
    found = detector.detect(image)
    seconds = time.monotonic() - start
    hwm, _ = _hwm_rss_mib()
    return {
        "side": side,
        "megapixels": round(side * side / 1e6, 2),
        "content": kind,
        "faces": len(found),
        "seconds": round(seconds, 2),
        "extra_mib": round(hwm - rss),
    }


def measure_detection(settings: Settings, kill_above_gib: float) -> list[dict[str, Any]]:
    env = {**os.environ, "FACEREG_TORCH_THREADS": "1"}
    rows = []
    for side, kind in DETECTION_CASES:
        cmd = [sys.executable, str(REPO_ROOT / "scripts" / "benchmark.py"), "detect-one", str(side), kind]
        run = run_measured(cmd, env, REPO_ROOT, kill_above_gib * 1024, timeout_s=600)
        row = json.loads(run.stdout.strip().splitlines()[-1]) if run.exit_code == 0 else {"error": run.outcome}
        rows.append({"side": side, "content": kind, **row})
        print(f"mtcnn {side}x{side} {kind}: {row}", flush=True)
    return rows


def lfw_path(settings: Settings, person: str, n: int) -> Path:
    assert settings.datasets is not None
    return settings.datasets / "lfw" / "images" / person / f"{person}_{n:04d}.jpg"


def run_all(settings: Settings, out: Path, code_dir: Path | None, kill_above_gib: float) -> dict[str, Any]:
    """Measure each image with this tree (and `code_dir`, run just before it as "before"); write decode.json."""
    if settings.datasets is None or not lfw_path(settings, *PAIR).is_file():
        raise SystemExit("benchmark decode needs LFW under FACEREG_DATASETS")
    face, pair = lfw_path(settings, *FACE), lfw_path(settings, *PAIR)
    trees = {"before": code_dir.resolve()} if code_dir is not None else {}
    trees["after"] = REPO_ROOT
    rows = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-decode-") as tmp:
        corpus = {"lfw pair": (face, "250x250 LFW JPEG (the baseline)"), **hostile_images(Path(tmp), face)}
        roots = [Path(tmp), face.parents[2]]
        for name, (path, what) in corpus.items():
            row: dict[str, Any] = {"image": name, "what": what, "file_bytes": path.stat().st_size}
            for label, tree in trees.items():
                env = child_env(settings, roots, tree)
                row[label] = measure_one(tree, env, path, pair, kill_above_gib * 1024)
                print(f"{name}: {label}: {row[label]['summary']}", flush=True)
            rows.append(row)
    report = {
        "what": "scripts/verify_faces.py IMAGE LFW_FACE, a child process each (FACEREG_MODEL=mobilefacenet, one torch "
        "thread); peak is the child's own VmHWM as last seen while it ran (every 0.1 s), killed past kill_above_gib",
        "pair": pair.name,
        "trees": {label: str(tree) for label, tree in trees.items()},
        "kill_above_gib": kill_above_gib,
        "host": {
            "cpus": os.cpu_count(),
            "load_1min_at_start": round(load, 1),
            "python": platform.python_version(),
        },
        "runs": rows,
        "mtcnn_alone": measure_detection(settings, kill_above_gib),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "decode.json").write_text(json.dumps(report, indent=2) + "\n")
    return {row["image"]: {label: row[label]["summary"] for label in trees} for row in rows}
