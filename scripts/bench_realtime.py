"""`benchmark.py realtime`: scripts/realtime_attendance.py end to end on a generated 640x480 25 FPS video.

Each mode (detector, inline or through 2 local workers, every Nth frame, paced or as fast as possible) runs the
script as a subprocess on its own fresh database and data folder, with the video's enrolled people registered in
this process before the clock starts; its summary line gives the FPS, the milliseconds per stage and the
frame-to-event latency, and its attendance events are scored against the video's truth.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.image_io import encode_image
from scripts.make_test_video import VideoOptions, make_video
from scripts.supervisor import launcher
from scripts.supervisor.catalogue import worker_env
from scripts.supervisor.processes import child_env
from services.attendance.recognition import chip_size
from services.config import REPO_ROOT, Settings
from services.context import ServiceContext, open_context
from services.evaluation.attendance import VideoTruth, score_attendance
from services.registry.bulk import PersonPlan
from services.registry.enrollment import EnrollOptions
from services.registry.galleries import get_gallery
from services.storage.records import AttendanceEvent
from workers import bulk
from workers.client import TaskClient
from workers.payloads import from_bytes

GALLERY = "benchrt"
CAMERA = "door"
START = "2026-03-02T08:00:00+00:00"  # the video's first frame: event times (and cooldowns) are video time
MODEL = "mobilefacenet"
WORKERS = 2
RUN_TIMEOUT_S = 600.0
WARM_TRIES = 5
PIPELINE_LOADED = "face pipeline:"  # services.engine logs it when a process has built its model
STAGES = ("read", "detect", "track", "chips", "backend", "replies", "annotate", "publish")


@dataclass(frozen=True, slots=True)
class Mode:
    detector: str  # "yunet" | "mtcnn"
    workers: int  # 0: inline (faces embedded in the script's process)
    every: int  # detect every Nth frame
    fast: bool  # as fast as possible (no frame dropped), else paced at the file's frame rate

    @property
    def name(self) -> str:
        backend = f"queue {self.workers}w" if self.workers else "inline"
        every = f" every {self.every}" if self.every > 1 else ""
        return f"{self.detector} {backend}{every} {'fast' if self.fast else 'realtime'}"

    def args(self) -> list[str]:
        return [
            "--detector",
            self.detector,
            "--every",
            str(self.every),
            "--queue" if self.workers else "--inline",
            "--fast" if self.fast else "--realtime",
        ]


MODES = (
    Mode("yunet", 0, 1, True),  # the ceiling
    Mode("yunet", 0, 1, False),  # paced: does it keep up with the camera?
    Mode("yunet", WORKERS, 1, True),
    Mode("yunet", WORKERS, 1, False),
    Mode("yunet", 0, 2, False),
    Mode("mtcnn", 0, 1, True),
    Mode("mtcnn", 0, 1, False),
)


def gallery_plans(truth: VideoTruth) -> list[PersonPlan]:
    """The video's enrolled people with their enrollment photos, as build_database plans them."""
    return [
        PersonPlan(p.name, f"{GALLERY}/{p.name}", [Path(i) for i in p.enroll_images], [])
        for p in truth.people
        if p.enrolled
    ]


def isolated_settings(settings: Settings, roots: list[Path]) -> Settings:
    """A fresh database, data folder and install name (so its own queues), MobileFaceNet, one torch thread."""
    base = settings.mongo_uri.split("?", 1)[0].rsplit("/", 1)[0]
    return settings.model_copy(
        update={
            "mongo_uri": f"{base}/benchrt_{uuid.uuid4().hex[:8]}",
            "install_name": "",
            "data_dir": Path(tempfile.mkdtemp(prefix="benchrt-")),
            "model": MODEL,
            "torch_threads": 1,
            "gallery": GALLERY,
            "input_roots": roots,
        }
    )


def enroll(ctx: ServiceContext, plans: list[PersonPlan], roots: list[Path]) -> None:
    opts = EnrollOptions("largest", ctx.settings.enroll_min_quality)
    summary = bulk.register(ctx, plans, GALLERY, opts, len(plans), None, roots=roots)
    missing = summary.images - summary.faces_enrolled
    if missing:
        raise SystemExit(f"benchmark realtime: {missing} of {summary.images} gallery photos were not enrolled")


def warm_workers(ctx: ServiceContext, logs: list[Path]) -> None:
    """Each worker builds its model and opens the gallery (they do on their first task) before the clock starts:
    rounds of two grey chips per worker until every worker's log says its pipeline is built."""
    size = chip_size(get_gallery(ctx, GALLERY), ctx.settings.model_dir)
    chip = from_bytes(encode_image(np.full((size, size, 3), 128, np.uint8), ".png"), "warm.png")
    with TaskClient(ctx.settings) as client:
        for _ in range(WARM_TRIES):
            ids = [client.submit("recognise_chips", chips=[chip], gallery=GALLERY, top_k=1) for _ in logs * 2]
            failed = [st for st in client.wait(ids, timeout=300).values() if st.state != "SUCCESS"]
            if failed:
                raise SystemExit(f"benchmark realtime: a warm-up task failed: {failed[0].error or failed[0].state}")
            if all(PIPELINE_LOADED in log.read_text(errors="replace") for log in logs):
                return
    raise SystemExit(f"benchmark realtime: not every worker took a warm-up task in {WARM_TRIES} rounds")


def run_script(settings: Settings, mode: Mode, video: Path, cooldown_s: float) -> tuple[dict[str, Any], int, float]:
    """The realtime script on `video`: its summary (the last stdout line), the events it printed, wall seconds."""
    argv = [sys.executable, str(REPO_ROOT / "scripts" / "realtime_attendance.py"), str(video)]
    argv += ["--name", CAMERA, "--gallery", GALLERY, "--cooldown", f"{cooldown_s:g}", "--start-time", START]
    argv += [*mode.args(), "--json-events"]
    log = settings.data_dir / "realtime.log"
    started = time.perf_counter()
    with log.open("wb") as err:
        done = subprocess.run(
            argv,
            cwd=REPO_ROOT,
            env=child_env(worker_env(settings, 1)),
            stdout=subprocess.PIPE,
            stderr=err,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
    wall = time.perf_counter() - started
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"benchmark realtime: {mode.name} exited {done.returncode}:\n{tail}")
    return json.loads(lines[-1]), len(lines) - 1, wall


def run_mode(
    settings: Settings, mode: Mode, video: Path, truth: VideoTruth, plans: list[PersonPlan], roots: list[Path]
) -> dict[str, Any]:
    isolated = isolated_settings(settings, roots)
    ctx = open_context(isolated)
    procs = []
    try:
        enroll(ctx, plans, roots)
        if mode.workers:
            logs = isolated.data_dir / "logs"
            procs = launcher.start_workers(isolated, mode.workers, logs, name="benchrt")
            if launcher.wait_online(isolated, mode.workers, timeout=180) < mode.workers:
                raise SystemExit("benchmark realtime: the workers did not come online")
            warm_workers(ctx, [logs / f"worker-benchrt-{i}.log" for i in range(mode.workers)])
        summary, printed, wall = run_script(isolated, mode, video, truth.cooldown_s)
        events = [AttendanceEvent.from_doc(d) for d in ctx.db.attendance.find({"source": CAMERA})]
    finally:
        launcher.stop_workers(procs)
        database = ctx.db.attendance.database
        database.client.drop_database(database.name)
        shutil.rmtree(isolated.data_dir, ignore_errors=True)
    score = score_attendance(truth, events)
    return {
        "mode": mode.name,
        "detector": mode.detector,
        "workers": mode.workers,
        "every": mode.every,
        "pace": "fast" if mode.fast else "realtime",
        "fps": summary["fps"],
        "frames_read": summary["frames_read"],
        "frames_processed": summary["frames_processed"],
        "frames_dropped": summary["frames_dropped"],
        "ms_per_stage": summary["ms_per_stage"],
        "latency_ms": summary["latency_ms"],
        "tracks": summary["tracks"],
        "events": summary["events"],
        "unknown_events": summary["unknown_events"],
        "events_printed": printed,
        "events_stored": len(events),
        "precision": round(score.precision, 3),
        "recall": round(score.recall, 3),
        "duplicates": len(score.duplicates),
        "failures": score.failures(),
        "wall_s": round(wall, 1),
        "load_1min_after": round(os.getloadavg()[0], 2),  # other processes on the machine skew the numbers
        "summary": summary,
    }


def _gpu() -> bool:
    import torch  # the benchmark's own process has it loaded already (enrollment)

    return bool(torch.cuda.is_available())


def run_all(out: Path, settings: Settings, seconds: float = 30.0, modes: tuple[Mode, ...] = MODES) -> dict[str, Any]:
    """Every mode on one generated video (seed 0); writes out/realtime.json and out/realtime.md."""
    if settings.datasets is None:
        raise SystemExit("benchmark realtime needs LFW under FACEREG_DATASETS")
    lfw = settings.datasets / "lfw"
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="benchrt-video-") as tmp:
        options = VideoOptions(width=640, height=480, fps=25.0, seconds=seconds, seed=0)
        truth = make_video(Path(tmp), lfw, options)
        roots = [Path(tmp).resolve(), lfw.resolve()]
        plans = gallery_plans(truth)
        runs = [run_mode(settings, m, Path(tmp) / "video.mp4", truth, plans, roots) for m in modes]
    report = {
        "machine": {"cpu_count": os.cpu_count(), "gpu": _gpu(), "load_before": load_before},
        "video": {
            "width": truth.width,
            "height": truth.height,
            "fps": truth.fps,
            "frames": truth.frames,
            "seed": truth.seed,
            "cooldown_s": truth.cooldown_s,
            "enrolled": len(plans),
            "people": len(truth.people),
            "visits": sum(len(p.visits) for p in truth.people),
        },
        "model": MODEL,
        "torch_threads": 1,
        "goal_fps": 25.0,
        "runs": runs,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "realtime.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "realtime.md").write_text(markdown(report))
    return report


def markdown(report: dict[str, Any]) -> str:
    machine, video = report["machine"], report["video"]
    gpu = "a GPU" if machine["gpu"] else "no GPU"
    lines = [
        "# benchmark realtime",
        "",
        f"scripts/realtime_attendance.py on a generated {video['width']}x{video['height']} {video['fps']:g} FPS video "
        f"({video['frames']} frames, seed {video['seed']}, {video['people']} people of whom {video['enrolled']} "
        f"enrolled, {video['visits']} visits, cooldown {video['cooldown_s']:g} s); {report['model']}, "
        f"{report['torch_threads']} torch thread per process; {machine['cpu_count']} cores, {gpu}. "
        "Goal: >= 25 FPS processed (the camera's own 30 FPS is the aim). FPS: frames processed per second of the "
        "run; fast: every frame, as fast as possible; realtime: paced at 25 FPS, stale frames dropped. Latency: "
        "from reading the frame that decided a track to its event being stored (fast: including the up to 2 "
        "frames decoded ahead). Wall: the script's whole run, model loading included. Load: the machine's "
        "1-minute load average after the run (above 2 on 2 cores, other processes took CPU from it).",
        "",
        "| mode | FPS | read / dropped | latency p50 / p95 ms | events / unknown | precision / recall / dup "
        "| wall s | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        lat = r["latency_ms"]
        lines.append(
            f"| {r['mode']} | {r['fps']} | {r['frames_read']} / {r['frames_dropped']} | {lat['p50']} / {lat['p95']} "
            f"| {r['events']} / {r['unknown_events']} | {r['precision']} / {r['recall']} / {r['duplicates']} "
            f"| {r['wall_s']} | {r['load_1min_after']} |"
        )
    lines += [
        "",
        "Milliseconds per processed frame, by stage (read: waiting for the frame; paced, that is idle time):",
        "",
    ]
    lines += ["| mode | " + " | ".join(STAGES) + " |", "|---|" + "---|" * len(STAGES)]
    for r in report["runs"]:
        lines.append(f"| {r['mode']} | " + " | ".join(str(r["ms_per_stage"].get(s, "")) for s in STAGES) + " |")
    failing = [f"- {r['mode']}: {'; '.join(r['failures'])}" for r in report["runs"] if r["failures"]]
    if failing:
        lines += ["", "Attendance acceptance misses:", "", *failing]
    return "\n".join(lines) + "\n"
