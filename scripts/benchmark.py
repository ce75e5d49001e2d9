"""Benchmarks that write report files (speed and memory targets live here, not in tests).

python scripts/benchmark.py embed [--images N] [--device cuda --batch 256] [--out reports/benchmarks]
python scripts/benchmark.py train [--device cuda] [--runs iresnet50:256:fp16,iresnet50:256:bf16] [--steps 20]
python scripts/benchmark.py index [--sizes 100000,1000000] [--dims 128,512] [--modes server,embedded]
                                  [--ef 100,200,400] [--builds 32:200] [--mongo]
python scripts/benchmark.py queue [--people N]
python scripts/benchmark.py decode [--code-dir OLD_TREE] [--kill-above-gib 6]
python scripts/benchmark.py realtime [--seconds 30]   (realtime attendance FPS, stage ms, latency; ~10 min)
python scripts/benchmark.py quality [--dlib-folds 2]   (detectors, small faces, flip, templates on LFW and lfw-64; ~1 h)
"""

from __future__ import annotations

from pathlib import Path

from scripts.bench_decode import detect_one
from scripts.bench_decode import run_all as run_decode
from scripts.bench_embed import run_all, run_one, summary_table
from scripts.bench_index import Case
from scripts.bench_index import markdown as index_table
from scripts.bench_index import measure as index_one
from scripts.bench_index import run_all as run_index
from scripts.bench_quality import DEFAULT_TOLERANCE, DLIB_FOLDS, TIMING_IMAGES
from scripts.bench_quality import markdown as quality_table
from scripts.bench_quality import run_all as run_quality
from scripts.bench_queue import run_all as run_queue
from scripts.bench_realtime import markdown as realtime_table
from scripts.bench_realtime import run_all as run_realtime
from scripts.bench_train import CPU_RUNS, CUDA_RUNS, parse_runs
from scripts.bench_train import bench_one as bench_train_one
from scripts.bench_train import markdown as train_table
from scripts.bench_train import run_all as run_train
from scripts.cli import parser as cli_parser
from scripts.cli import print_json, run, setup_logging
from scripts.cli_args import POSITIVE, bounded_float, bounded_int, existing_dir, positive_list
from services.config import get_settings
from services.storage.vector_index import HnswParams


def main() -> int:
    parser = cli_parser(__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    embed = sub.add_parser("embed", help="detection ms/image, embedding faces/s, torch vs ONNX, peak memory")
    embed.add_argument("--images", type=POSITIVE, default=40)
    embed.add_argument("--device", default="cpu", help="cpu or cuda (torch fp16, ONNX Runtime CUDA)")
    embed.add_argument("--batch", type=POSITIVE, default=32, help="faces per embedder call")
    embed.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    train = sub.add_parser("train", help="training images/s and peak memory per backbone, batch and precision")
    train.add_argument("--device", default="cpu", help="cpu or cuda")
    train.add_argument("--runs", help=f"ARCH:BATCH:PRECISION,... (default cpu: {CPU_RUNS}; cuda: {CUDA_RUNS})")
    train.add_argument("--steps", type=POSITIVE, default=10, help="timed steps per run (after 2 warm-up steps)")
    train.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    index = sub.add_parser("index", help="VectorIndex add/query/batch/recall/memory by size, mode and HNSW setting")
    index.add_argument(
        "--sizes", type=positive_list, default=[100_000, 1_000_000], help="comma-separated vector counts"
    )
    index.add_argument("--dims", type=positive_list, default=[128], help="dimensions (128 MobileFaceNet, 512 R50)")
    index.add_argument("--modes", default="server,embedded", help="server, embedded or both")
    index.add_argument("--ef", type=positive_list, default=[100, 200, 400], help="ef_search values measured")
    index.add_argument("--builds", default="32:200", help="HNSW builds M:EF_CONSTRUCTION,...")
    index.add_argument("--store", type=Path, default=Path("data/bench/index"), help="built stores, kept")
    index.add_argument("--mongo", action="store_true", help="also MongoDB rates on FACEREG_MONGO_URI")
    index.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    index_one_cmd = sub.add_parser("index-one", help="(internal) one index measurement in this process")
    index_one_cmd.add_argument("mode", choices=["server", "embedded"])
    index_one_cmd.add_argument("store", type=Path)
    index_one_cmd.add_argument("ef", type=int)
    queue = sub.add_parser("queue", help="registration images/s: inline vs 1 and 2 workers, batched vs not")
    queue.add_argument("--people", type=POSITIVE, default=100)
    queue.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    realtime = sub.add_parser("realtime", help="realtime_attendance.py FPS, ms per stage, latency, accuracy by mode")
    realtime.add_argument("--seconds", type=bounded_float(10.0, 600.0), default=30.0, help="the video's length")
    realtime.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    decode = sub.add_parser("decode", help="verify_faces.py on hostile images: time, peak memory, outcome")
    decode.add_argument("--code-dir", type=existing_dir, help="also measure this tree (the code before the fix)")
    decode.add_argument(
        "--kill-above-gib", type=bounded_float(0.5, 64.0), default=6.0, help="memory ceiling of a run, GiB"
    )
    decode.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    quality = sub.add_parser(
        "quality", help="detection rate/ms, small-face grid, View 2 and Top-K by detector, flip, template weight"
    )
    quality.add_argument("--timing-images", type=POSITIVE, default=TIMING_IMAGES, help="images per timed setting")
    quality.add_argument("--dlib-folds", type=bounded_int(2, 10), default=DLIB_FOLDS, help="View 2 folds for dlib")
    quality.add_argument(
        "--tolerance", type=bounded_float(0.0, 0.05), default=DEFAULT_TOLERANCE, help="dev accuracy counted as a tie"
    )
    quality.add_argument("--detectors", help="comma-separated (default: mtcnn,yunet,retinaface where available)")
    quality.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    det = sub.add_parser("detect-one", help="(internal) MTCNN's memory on one image size, in this process")
    det.add_argument("side", type=POSITIVE)
    det.add_argument("content", choices=["faces", "noise", "40 px faces"])
    train_one = sub.add_parser("train-one", help="(internal) one training configuration in this process")
    train_one.add_argument("config", nargs=5, metavar="ARCH BATCH PRECISION DEVICE STEPS")
    one = sub.add_parser("embed-one", help="(internal) one configuration in this process")
    one.add_argument("config", nargs="+")
    args = parser.parse_args()
    setup_logging()
    if args.command == "train-one":
        arch, batch, amp, device, steps = args.config
        print_json(bench_train_one(arch, int(batch), amp, device, int(steps)))
        return 0
    if args.command == "embed-one":
        print_json(run_one(get_settings(), args.config))
        return 0
    if args.command == "detect-one":
        print_json(detect_one(get_settings(), args.side, args.content))
        return 0
    if args.command == "decode":
        print_json(run_decode(get_settings(), args.out, args.code_dir, args.kill_above_gib))
        return 0
    if args.command == "queue":
        print_json(run_queue(args.people, args.out, get_settings()))
        return 0
    if args.command == "realtime":
        print(realtime_table(run_realtime(args.out, get_settings(), args.seconds)))
        print_json({"report": str(args.out / "realtime.json")})
        return 0
    if args.command == "quality":
        detectors = args.detectors.split(",") if args.detectors else None
        report = run_quality(get_settings(), args.out, args.tolerance, args.timing_images, args.dlib_folds, detectors)
        print(quality_table(report))
        print_json({"report": str(args.out / "quality.json")})
        return 0
    if args.command == "train":
        default = CUDA_RUNS if args.device.startswith("cuda") else CPU_RUNS
        report = run_train(args.device, parse_runs(args.runs or default), args.steps, args.out)
        print(train_table(report))
        return 0
    if args.command == "index-one":
        print_json(index_one(args.mode, args.store, args.ef))
        return 0
    if args.command == "index":
        settings = get_settings()  # an invalid FACEREG_* value: one line and exit 2, before any work
        builds = [HnswParams(*(int(v) for v in b.split(":"))) for b in args.builds.split(",")]
        cases = [Case(n, d, b) for n in args.sizes for d in args.dims for b in builds]
        modes = [m for m in args.modes.split(",") if m]
        report = run_index(cases, modes, args.ef, args.out, args.store, settings if args.mongo else None)
        print(index_table(report))
        return 0
    report = run_all(args.images, args.out, args.device, args.batch)
    print(summary_table(report))
    print_json({"report": str(args.out / "embed.json")})
    return 0


if __name__ == "__main__":
    run(main)
