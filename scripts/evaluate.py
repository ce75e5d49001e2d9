"""Evaluate a model on a pairs CSV (verify) or an enroll/probe split (identify).

  python scripts/evaluate.py verify --root DIR --pairs PAIRS.csv [--model M] [--runtime R] [--folds K] [--out OUT]
  python scripts/evaluate.py identify --root DIR --split SPLIT.csv [--model M] [--runtime R] [--out OUT]

The last line printed is the report as one JSON object (also written to OUT/report.json).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model.embedders import create_embedder
from services.cli import print_json, run, setup_logging
from services.config import get_settings
from services.engine import build_pipeline
from services.evaluation import evaluate_identification, evaluate_verification


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", type=Path, required=True, help="folder the CSV paths are relative to")
    p.add_argument("--model", help="arcface-r50 | mobilefacenet | dlib | auto")
    p.add_argument("--runtime", choices=["auto", "torch", "onnx", "dlib"])
    p.add_argument("--detector", choices=["mtcnn", "yunet"])
    p.add_argument(
        "--no-face",
        choices=["error", "center_crop"],
        default="center_crop",
        help="what to do when no face is found (default: centre crop, as the LFW protocol allows)",
    )
    p.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    p.add_argument("--out", type=Path, default=Path("reports/evaluation"))
    p.add_argument("-v", "--verbose", action="store_true")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="1:1 verification, k-fold accuracy, ROC")
    _common(verify)
    verify.add_argument("--pairs", type=Path, required=True, help="CSV: path_a,path_b,same[,fold]")
    verify.add_argument("--folds", type=int, help="evaluate only the first K folds")
    verify.add_argument(
        "--parity-runtime",
        choices=["torch", "onnx"],
        help="also embed the first --parity-n faces with this runtime and report the cosine",
    )
    verify.add_argument("--parity-n", type=int, default=100)
    identify = sub.add_parser("identify", help="closed-set Top-1/3/5 on an enroll/probe split")
    _common(identify)
    identify.add_argument("--split", type=Path, required=True, help="CSV: path,identity,role (enroll|probe)")
    args = parser.parse_args()
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
    if args.command == "verify":
        other = None
        if args.parity_runtime:
            other = create_embedder(
                pipeline.embedder.spec.name,
                args.parity_runtime,
                settings.model_dir,
                pipeline.embedder.device,
                pipeline.contract.flip,
            )
        report = evaluate_verification(
            pipeline, args.root, args.pairs, args.out, args.folds, parity_with=other, parity_n=args.parity_n
        )
    else:
        report = evaluate_identification(pipeline, args.root, args.split, args.out)
    print_json({k: v for k, v in report.items() if k not in ("failures", "top1_misses")})
    return 0


if __name__ == "__main__":
    run(main)
