"""Register every person of a folder of `<person>/<images>`, then (optionally) evaluate Top-K.

  python scripts/build_database.py DIR [--gallery NAME] [--enroll-per-person N] [--queue|--inline]
                                       [--workers N] [--strict] [--evaluate] [--out OUT]

The first N images of each person (sorted by name; 0 = all) enroll them; with --evaluate the
other images are searched and Top-1/3/5 printed as a table and written as JSON (the last line).
Re-running skips what is already registered (or was refused for a lasting reason).

Files are read only under the allowed input roots (FACEREG_INPUT_ROOTS; default: the data folder and the
datasets folder). Through the queue, DIR must lie under one of them, since the workers read its files;
--inline reads DIR itself too, but a file whose real path (symlinks resolved) leaves both DIR and the
roots is refused. A photo already enrolled for another person (the same image, also twice in DIR) is
reported; with --strict it is refused. Each image that is not enrolled is one rejection with its reason
(file names that are not UTF-8 shown with \\xNN escapes), listed in OUT/report.json.

Exit status:
  0  every image of the selected persons is in the gallery, enrolled now or by an earlier run
  1  the run finished, but some images were rejected (now, or by an earlier run) or some tasks failed:
     see "rejections", "rejections_before" and "failures" in OUT/report.json
  2  misuse, or the run could not start (a folder outside the input roots, no worker, no database)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from model.evaluation import metrics
from scripts.cli import EXIT_BAD_INPUT, parser, print_json, run, setup_logging
from scripts.cli_args import COUNT, POSITIVE, bounded_int, existing_dir
from scripts.supervisor import launcher
from services.config import Settings, get_settings
from services.context import ServiceContext, open_context
from services.registry.bulk import BulkSummary, plan_folder, select_persons, triage
from services.registry.enrollment import EnrollOptions
from services.registry.galleries import ensure_gallery
from services.storage.input_paths import ROOTS_SETTING, OutsideInputRoots, printable, within
from workers import bulk
from workers.client import TaskClient
from workers.messages import MAX_BATCH

EXIT_INCOMPLETE = 1


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


def input_roots(folder: Path, queue: bool, settings: Settings) -> list[Path]:
    """The folders this run reads from: the allowed input roots (DIR must lie under one when workers read
    it), and DIR itself for an inline run."""
    allowed = settings.allowed_input_roots
    real = folder.resolve()
    if not queue:
        return [real, *allowed]
    if not within(real, allowed):
        roots = os.pathsep.join(printable(r) for r in [*allowed, real])
        raise OutsideInputRoots(
            f"{printable(folder)} is outside the allowed input roots ({', '.join(map(printable, allowed))}), "
            f"so the workers may not read it: set {ROOTS_SETTING}={roots} for this command and the workers, "
            "or run with --inline"
        )
    return allowed


def _parser() -> argparse.ArgumentParser:
    cli = parser(__doc__)
    cli.add_argument("folder", type=existing_dir)
    cli.add_argument("--gallery", help="default: FACEREG_GALLERY")
    cli.add_argument("--enroll-per-person", type=COUNT, default=2, help="images that enroll each person (0: all)")
    mode = cli.add_mutually_exclusive_group()
    mode.add_argument("--queue", dest="queue", action="store_true", default=True, help="through the workers (default)")
    mode.add_argument("--inline", dest="queue", action="store_false", help="in this process")
    cli.add_argument(
        "--workers", type=COUNT, default=0, help="start N local workers for this run (default: use running ones)"
    )
    cli.add_argument("--chunk", type=bounded_int(1, MAX_BATCH), default=8, help="persons per task")
    cli.add_argument(
        "--multi-face",
        choices=["largest", "error"],
        default="largest",
        help="photos with several faces: use the main face (default) or refuse them",
    )
    cli.add_argument("--min-images", type=POSITIVE, default=1, help="only persons with at least this many images")
    cli.add_argument("--max-persons", type=COUNT, default=0, help="at most this many persons, spread evenly (0: all)")
    cli.add_argument("--strict", action="store_true", help="refuse a photo already enrolled for another person")
    cli.add_argument("--evaluate", action="store_true")
    cli.add_argument("--out", type=Path, default=Path("reports/build_database"))
    return cli


def main() -> int:
    args = _parser().parse_args()
    setup_logging()
    settings = get_settings()
    gallery = args.gallery or settings.gallery
    roots = input_roots(args.folder, args.queue, settings)
    ctx = open_context(settings)
    options = EnrollOptions(args.multi_face, settings.enroll_min_quality, "refuse" if args.strict else "warn")
    procs = (
        launcher.start_workers(settings, args.workers, settings.data_dir / "logs", name="build")
        if args.queue and args.workers
        else []
    )
    queue = TaskClient(settings) if args.queue else None
    try:
        if args.queue and launcher.wait_online(settings, max(1, args.workers)) == 0:
            hint = "start one (`celery -A workers.worker worker`) or pass --workers N"
            print(f"error: no worker answers: {hint}", file=sys.stderr)
            return EXIT_BAD_INPUT
        found = plan_folder(args.folder, gallery, args.enroll_per_person)
        plans = select_persons(found, args.min_images, args.max_persons)
        planned = triage(ctx, gallery, plans, roots, options.duplicate_photos)
        summary = bulk.register(ctx, planned.todo, gallery, options, args.chunk, queue, roots=roots)
        summary.take(planned)
        report: dict[str, Any] = {
            "gallery": gallery,
            "mode": "queue" if args.queue else "inline",
            "persons_in_folder": len(plans),
            **summary.to_dict(),
            **counts(ctx, gallery),
        }
        if args.evaluate:
            results = bulk.search(ctx, plans, gallery, 32, queue, roots=roots)
            report["evaluation"] = top_k(results)
    finally:
        if queue is not None:
            queue.close()
        launcher.stop_workers(procs)
    return _finish(report, summary, args.out)


def _finish(report: dict[str, Any], summary: BulkSummary, out: Path) -> int:
    """Write OUT/report.json, print the table and the JSON line; the exit status."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report | summary.details(), indent=2))
    _print_table(report)
    print_json(
        report.get("evaluation", report)
        | {"summary": {k: report[k] for k in ("persons", "faces_mongo", "vectors_chroma")}}
    )
    if summary.complete:
        return 0
    print(
        f"incomplete: {len(summary.rejections)} image(s) rejected, {len(summary.rejected_before)} rejected by an "
        f"earlier run, {len(summary.failures)} task(s) failed; listed in {printable(out / 'report.json')}",
        file=sys.stderr,
    )
    return EXIT_INCOMPLETE


def _print_table(report: dict[str, Any]) -> None:
    rows = [
        ("persons in folder", report["persons_in_folder"]),
        ("persons registered now", report["persons"]),
        ("faces enrolled now", report["faces_enrolled"]),
        ("skipped (already done)", report["skipped_before"]),
        ("rejected", report["rejected"]),
        ("rejected before (skipped)", report["rejected_before"]),
        ("photos of another person too", report["duplicate_photos"]),
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
