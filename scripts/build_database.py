"""Register every person of a folder of `<person>/<images>`, then (optionally) evaluate Top-K.

  python scripts/build_database.py DIR [--gallery NAME] [--enroll-per-person N] [--queue|--inline]
                                       [--workers N] [--evaluate] [--out OUT]

The first N images of each person (sorted by name; 0 = all) enroll them; with --evaluate the
other images are searched and Top-1/3/5 printed as a table and written as JSON (the last line).
Re-running skips what is already registered (or was refused for a lasting reason).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from model import metrics
from services.bulk import plan_folder, remaining, select_persons
from services.cli import print_json, run, setup_logging
from services.config import get_settings
from services.context import ServiceContext, open_context
from services.enrollment import EnrollOptions
from services.galleries import ensure_gallery
from workers import bulk, local


def counts(ctx: ServiceContext, gallery: str) -> dict[str, int]:
    g = ensure_gallery(ctx, gallery)
    persons = {d["person_id"] for d in ctx.db.faces.find({"gallery": gallery}, {"person_id": 1})}
    return {
        "persons_with_faces": len(persons),
        "faces_mongo": ctx.db.faces.count_documents({"gallery": gallery, "vector_state": "indexed"}),
        "vectors_chroma": ctx.index.count(g.collection),
    }


def top_k(results: list[dict[str, Any]]) -> dict[str, Any]:
    ranked = [[r[0].split("/", 1)[-1] for r in res["ranked"]] for res in results]
    truth = [res["expected"].split("/", 1)[-1] for res in results]
    if not truth:
        return {"n_probes": 0}
    scores = metrics.top_k_accuracy(ranked, truth, (1, 3, 5))
    return {
        "top1": scores[1],
        "top3": scores[3],
        "top5": scores[5],
        "n_probes": len(truth),
        "n_failed": sum(1 for r in results if r["error"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--gallery", help="default: FACEREG_GALLERY")
    parser.add_argument("--enroll-per-person", type=int, default=2)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--queue", dest="queue", action="store_true", default=True, help="through the workers (default)")
    mode.add_argument("--inline", dest="queue", action="store_false", help="in this process")
    parser.add_argument(
        "--workers", type=int, default=0, help="start N local workers for this run (default: use running ones)"
    )
    parser.add_argument("--chunk", type=int, default=8, help="persons per task")
    parser.add_argument(
        "--multi-face",
        choices=["largest", "error"],
        default="largest",
        help="photos with several faces: use the main face (default) or refuse them",
    )
    parser.add_argument("--min-images", type=int, default=1, help="only persons with at least this many images")
    parser.add_argument("--max-persons", type=int, default=0, help="at most this many persons, spread evenly (0: all)")
    parser.add_argument("--evaluate", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("reports/build_database"))
    args = parser.parse_args()
    setup_logging()
    settings = get_settings()
    gallery = args.gallery or settings.gallery
    ctx = open_context(settings)
    plans = select_persons(plan_folder(args.folder, gallery, args.enroll_per_person), args.min_images, args.max_persons)
    todo, skipped = remaining(ctx, gallery, plans)
    options = EnrollOptions(args.multi_face, settings.enroll_min_quality)
    procs = (
        local.start_workers(settings, args.workers, settings.data_dir / "logs", name="build")
        if args.queue and args.workers
        else []
    )
    try:
        if args.queue and local.wait_online(max(1, args.workers)) == 0:
            raise SystemExit(
                "no worker answers: start one (`celery -A workers.app worker -Q embed,io`) or pass --workers N"
            )
        summary = bulk.register(ctx, todo, gallery, options, args.chunk, args.queue)
        summary.skipped_before = skipped
        report: dict[str, Any] = {
            "gallery": gallery,
            "mode": "queue" if args.queue else "inline",
            "persons_in_folder": len(plans),
            **summary.to_dict(),
            **counts(ctx, gallery),
        }
        if args.evaluate:
            results = bulk.search(ctx, plans, gallery, 32, args.queue)
            report["evaluation"] = top_k(results)
    finally:
        local.stop_workers(procs)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    _print_table(report)
    print_json(
        report.get("evaluation", report)
        | {"summary": {k: report[k] for k in ("persons", "faces_mongo", "vectors_chroma")}}
    )
    return 0


def _print_table(report: dict[str, Any]) -> None:
    rows = [
        ("persons in folder", report["persons_in_folder"]),
        ("persons registered now", report["persons"]),
        ("faces enrolled now", report["faces_enrolled"]),
        ("skipped (already done)", report["skipped_before"]),
        ("rejected", report["rejected"]),
        ("task failures", report["n_failures"]),
        ("seconds", report["seconds"]),
        ("images/s", report["images_per_s"]),
        ("faces in MongoDB", report["faces_mongo"]),
        ("vectors in Chroma", report["vectors_chroma"]),
    ]
    ev = report.get("evaluation")
    if ev and ev.get("n_probes"):
        rows += [
            ("probes", ev["n_probes"]),
            ("Top-1", f"{ev['top1']:.4f}"),
            ("Top-3", f"{ev['top3']:.4f}"),
            ("Top-5", f"{ev['top5']:.4f}"),
        ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    run(main)
