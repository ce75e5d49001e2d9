"""`benchmark.py queue`: registration throughput in-process vs through 1 and 2 workers, and
batched (several persons per task, one embedding batch) vs unbatched (one person per task).

Each mode registers the same LFW people into its own fresh database, so no run is a re-run.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

from scripts.supervisor import launcher
from services.config import Settings
from services.context import open_context
from services.registry.bulk import PersonPlan, plan_folder
from services.registry.enrollment import EnrollOptions
from workers import bulk
from workers.client import TaskClient

MODES = [("inline", 0, 8), ("queue", 1, 8), ("queue", 2, 8), ("queue", 2, 1)]


def sample_folder(settings: Settings, n_people: int, work: Path) -> list[PersonPlan]:
    if settings.datasets is None:
        raise SystemExit("benchmark queue needs LFW under FACEREG_DATASETS")
    images = settings.datasets / "lfw" / "images"
    people = sorted(p for p in images.iterdir() if len(list(p.glob("*.jpg"))) >= 2)[::7][:n_people]
    for person in people:
        (work / person.name).mkdir(parents=True)
        for img in sorted(person.glob("*.jpg"))[:2]:
            (work / person.name / img.name).symlink_to(img)
    return plan_folder(work, "bench", 2)


def run_mode(settings: Settings, plans: list[PersonPlan], mode: str, workers: int, chunk: int) -> dict[str, Any]:
    base = settings.mongo_uri.rsplit("/", 1)[0]
    isolated = settings.model_copy(
        update={
            "mongo_uri": f"{base}/benchq_{uuid.uuid4().hex[:8]}",
            "data_dir": Path(tempfile.mkdtemp(prefix="benchq-")),
        }
    )
    ctx = open_context(isolated)
    procs = launcher.start_workers(isolated, workers, isolated.data_dir / "logs", name="bench") if workers else []
    try:
        if workers and launcher.wait_online(isolated, workers, timeout=180) < workers:
            raise SystemExit("benchmark workers did not come online")
        if mode == "inline":
            _ = ctx.pipeline  # load the model before the clock starts, as the workers have
        opts = EnrollOptions("largest", isolated.enroll_min_quality)
        with TaskClient(isolated) as queue:
            summary = bulk.register(ctx, plans, "bench", opts, chunk, queue if mode == "queue" else None, 1800)
    finally:
        launcher.stop_workers(procs)
        database = ctx.db.persons.database
        database.client.drop_database(database.name)
    return {
        "mode": mode,
        "workers": workers,
        "persons_per_task": chunk,
        "images": summary.images,
        "seconds": round(summary.seconds, 2),
        "images_per_s": round(summary.images / summary.seconds, 2),
        "faces": summary.faces_enrolled,
        "failures": len(summary.failures),
    }


def run_all(n_people: int, out: Path, settings: Settings) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        plans = sample_folder(settings, n_people, Path(tmp))
        runs = [run_mode(settings, plans, *m) for m in MODES]
    inline = runs[0]["images_per_s"]
    for r in runs:
        r["vs_inline"] = round(r["images_per_s"] / inline, 2)
    report = {
        "cpu_count": os.cpu_count(),
        "people": len(plans),
        "inline_torch_threads": settings.torch_threads or "auto",
        "worker_torch_threads": 1,
        "runs": runs,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "queue.json").write_text(json.dumps(report, indent=2))
    lines = [
        "# benchmark queue",
        "",
        "| mode | workers | persons/task | images | s | images/s | vs inline |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = ("mode", "workers", "persons_per_task", "images", "seconds", "images_per_s", "vs_inline")
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in runs]
    (out / "queue.md").write_text("\n".join(lines) + "\n")
    return report
