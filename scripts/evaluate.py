"""Evaluate a model on a pairs CSV (verify) or an enroll/probe split (identify).

  python scripts/evaluate.py verify --root DIR --pairs PAIRS.csv [--model M] [--runtime R] [--folds K|A-B] [--out OUT]
  python scripts/evaluate.py identify --root DIR --split SPLIT.csv [--model M] [--runtime R] [--out OUT]

The last line printed is the report as one JSON object (also written to OUT/report.json).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from model.embedders import create_embedder
from model.evaluation.protocols import evaluate_identification, evaluate_verification, read_csv
from model.pipeline import FacePipeline
from scripts.cli import parser, print_json, run, setup_logging
from scripts.cli_args import POSITIVE, SIMILARITY, bounded_float, existing_dir, existing_file, fold_list
from services.config import Settings, get_settings
from services.context import open_context
from services.dedup.check import injected_copy_check
from services.engine import build_pipeline
from services.evaluation.gallery import rows_from_csv
from services.evaluation.open_set import open_set_report, unknown_people_rows

FPIR = bounded_float(1e-6, 1.0)  # a target false-positive identification rate (0 cannot be calibrated)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", type=existing_dir, required=True, help="folder the CSV paths are relative to")
    p.add_argument("--model", help="arcface-r50 | mobilefacenet | dlib | auto | custom:<name>")
    p.add_argument("--runtime", choices=["auto", "torch", "onnx", "dlib"])
    p.add_argument("--detector", choices=["mtcnn", "yunet", "retinaface"])
    p.add_argument(
        "--no-face",
        choices=["error", "center_crop"],
        default="center_crop",
        help="what to do when no face is found (default: centre crop, as the LFW protocol allows)",
    )
    p.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    p.add_argument("--out", type=Path, default=Path("reports/evaluation"))
    p.add_argument("-v", "--verbose", action="store_true")


def _open_set(args: argparse.Namespace, settings: Settings, pipeline: FacePipeline) -> dict[str, Any]:
    rows = rows_from_csv(read_csv(args.split, ("path", "identity", "role")))
    unknown = unknown_people_rows(args.root, {r.identity for r in rows}, args.unknown_people)
    ctx = open_context(settings, pipeline)
    report = open_set_report(ctx, args.root, rows, unknown, args.gallery, args.target_fpir, args.apply)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return report


def _verify(args: argparse.Namespace, settings: Settings, pipeline: FacePipeline) -> dict[str, Any]:
    other = None
    if args.parity_runtime:
        other = create_embedder(
            pipeline.spec.name, args.parity_runtime, settings.model_dir, pipeline.device, pipeline.contract.flip
        )
    return evaluate_verification(
        pipeline, args.root, args.pairs, args.out, args.folds, parity_with=other, parity_n=args.parity_n
    )


def _identify(args: argparse.Namespace, settings: Settings, pipeline: FacePipeline) -> dict[str, Any]:
    return evaluate_identification(pipeline, args.root, args.split, args.out, template_weight=settings.template_weight)


def _dedup(args: argparse.Namespace, settings: Settings, pipeline: FacePipeline) -> dict[str, Any]:
    paths = [r["path"] for r in read_csv(args.split, ("path",))]
    with tempfile.TemporaryDirectory() as work:
        report = injected_copy_check(pipeline, args.root, paths, args.inject, Path(work), args.similarity)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    return report


COMMANDS = {"verify": _verify, "identify": _identify, "open-set": _open_set, "dedup": _dedup}


def _parser() -> argparse.ArgumentParser:
    cli = parser(__doc__)
    sub = cli.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="1:1 verification, k-fold accuracy, ROC")
    _common(verify)
    verify.add_argument("--pairs", type=existing_file, required=True, help="CSV: path_a,path_b,same[,fold]")
    verify.add_argument("--folds", type=fold_list, help="evaluate the first K folds (5) or these folds (5-9, 5,6,7)")
    verify.add_argument(
        "--parity-runtime",
        choices=["torch", "onnx"],
        help="also embed the first --parity-n faces with this runtime and report the cosine",
    )
    verify.add_argument("--parity-n", type=POSITIVE, default=100)
    identify = sub.add_parser("identify", help="closed-set Top-1/3/5 on an enroll/probe split")
    _common(identify)
    identify.add_argument("--split", type=existing_file, required=True, help="CSV: path,identity,role (enroll|probe)")
    open_set = sub.add_parser("open-set", help="1:N with unknowns, through MongoDB + Chroma: calibrate the threshold")
    _common(open_set)
    open_set.add_argument("--split", type=existing_file, required=True, help="CSV: path,identity,role (enroll|probe)")
    open_set.add_argument("--unknown-people", type=POSITIVE, default=400, help="people outside the split, 1 image each")
    open_set.add_argument("--target-fpir", type=FPIR, default=0.01, help="from 1e-6 to 1")
    open_set.add_argument("--gallery", default="openset-eval")
    open_set.add_argument("--apply", action="store_true", help="store the calibrated threshold on the gallery")
    dedup = sub.add_parser("dedup", help="inject re-encoded copies into a photo set and check the folder dedup")
    _common(dedup)
    dedup.add_argument("--split", type=existing_file, required=True, help="CSV with a `path` column: the photos to use")
    dedup.add_argument("--inject", type=POSITIVE, default=300, help="copies to inject (resized, recompressed, flipped)")
    dedup.add_argument("--similarity", type=SIMILARITY, default=0.7)
    return cli


def main() -> int:
    args = _parser().parse_args()
    setup_logging(args.verbose)
    settings = get_settings()
    pipeline = build_pipeline(
        settings,
        model=args.model,
        runtime=args.runtime,
        detector=args.detector,
        no_face=args.no_face,
        flip_tta=args.flip or None,
    )
    report = COMMANDS[args.command](args, settings, pipeline)
    print_json({k: v for k, v in report.items() if k not in ("failures", "top1_misses", "missed")})
    return 0


if __name__ == "__main__":
    run(main)
