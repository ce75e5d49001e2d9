"""Start, stop or inspect the local services: SecantusDB, Redis, the Chroma server (every process of the install
shares it; none with FACEREG_CHROMA_MODE=embedded), Celery workers and the dashboard.

  python scripts/local_services.py status
  python scripts/local_services.py start [--workers N] [--dashboard]
  python scripts/local_services.py stop

Addresses come from FACEREG_MONGO_URI, FACEREG_REDIS_URL, FACEREG_CHROMA_HOST/PORT; data, logs and pid
files go under FACEREG_DATA_DIR. `stop` ends only what `start` started. The last line printed is the
status as one JSON object; the exit code is 1 (with a message on stderr) when a service is not as asked, 2 when
a FACEREG_* value is invalid.
"""

from __future__ import annotations

import logging
import sys

from scripts.cli import Parser, parser, print_json, run, setup_logging
from scripts.cli_args import bounded_int
from scripts.supervisor.catalogue import InfraError
from scripts.supervisor.supervisor import start, status, stop
from services.config import Settings

WORKERS = bounded_int(0, 64)


def main() -> int:
    cli = parser(__doc__)
    common = Parser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true")
    sub = cli.add_subparsers(dest="command", required=True)
    sub.add_parser("status", parents=[common], help="print whether each service answers (exit code 0 when it can tell)")
    start_cmd = sub.add_parser("start", parents=[common], help="start mongo, redis and chroma where they do not answer")
    start_cmd.add_argument("--workers", type=WORKERS, default=0, help="also start N Celery workers (1 thread each)")
    start_cmd.add_argument("--dashboard", action="store_true", help="also start the dashboard (FACEREG_DASHBOARD_PORT)")
    sub.add_parser("stop", parents=[common], help="stop what `start` started")
    args = cli.parse_args()
    setup_logging(args.verbose)
    logging.getLogger("pymongo").setLevel(logging.INFO)  # -v is about this tool, not every driver heartbeat
    try:
        settings = Settings()  # an invalid value: one line and exit 2 (scripts.cli.run)
        problems: list[str] = []
        if args.command == "start":
            problems = start(settings, workers=args.workers, dashboard=args.dashboard)
        elif args.command == "stop":
            problems = stop(settings)
        report = status(settings)
    except (InfraError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    print_json(report)
    return 1 if problems else 0


if __name__ == "__main__":
    run(main)
