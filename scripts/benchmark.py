"""Benchmarks that write report files (speed and memory targets live here, not in tests).

python scripts/benchmark.py embed [--images N] [--out reports/benchmarks]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench_embed import run_all, run_one, summary_table
from bench_index import run_all as run_index
from bench_queue import run_all as run_queue

from services.cli import print_json, run, setup_logging
from services.config import get_settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    embed = sub.add_parser("embed", help="detection ms/image, embedding faces/s, torch vs ONNX, peak memory")
    embed.add_argument("--images", type=int, default=40)
    embed.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    index = sub.add_parser("index", help="Chroma add/query/recall at several sizes, MongoDB rates")
    index.add_argument("--sizes", default="100000,1000000", help="comma-separated vector counts")
    index.add_argument("--dim", type=int, default=128, help="the model's dimension (128 MobileFaceNet, 512 R50)")
    index.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    queue = sub.add_parser("queue", help="registration images/s: inline vs 1 and 2 workers, batched vs not")
    queue.add_argument("--people", type=int, default=100)
    queue.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    one = sub.add_parser("embed-one", help="(internal) one configuration in this process")
    one.add_argument("config", nargs="+")
    args = parser.parse_args()
    setup_logging()
    if args.command == "embed-one":
        print_json(run_one(get_settings(), args.config))
        return 0
    if args.command == "queue":
        print_json(run_queue(args.people, args.out, get_settings()))
        return 0
    if args.command == "index":
        sizes = [int(x) for x in args.sizes.split(",")]
        print_json(run_index(sizes, args.dim, args.out, get_settings()))
        return 0
    report = run_all(args.images, args.out)
    print(summary_table(report))
    print_json({"report": str(args.out / "embed.json")})
    return 0


if __name__ == "__main__":
    run(main)
