"""Identify the faces of a photo through a facereg install's task queue, with nothing of facereg installed
(task API version 1, docs/tasks.md).

    pip install "celery[redis]"
    python identify_client.py redis://127.0.0.1:6379/0 facereg photo.jpg --gallery default

Prints the task's result as JSON; a failed task prints its error code and message and exits 1.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

from celery import Celery


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("broker", help="the install's Redis URL (FACEREG_REDIS_URL)")
    cli.add_argument("install", help="the install's name (FACEREG_INSTALL_NAME, default its MongoDB database name)")
    cli.add_argument("image", type=Path, help="a photo (at most 8 MiB: it travels inline, in base64)")
    cli.add_argument("--gallery", help="default: the worker's FACEREG_GALLERY")
    cli.add_argument("--top-k", type=int, default=5, help="persons listed per face")
    cli.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the result")
    args = cli.parse_args()

    app = Celery("identify_client", broker=args.broker, backend=args.broker)
    app.conf.update(task_serializer="json", accept_content=["json"], result_accept_content=["json"])
    image = {"name": args.image.name, "b64": base64.b64encode(args.image.read_bytes()).decode("ascii")}
    sent = app.send_task(
        "workers.tasks.identify", args=[image, args.gallery, args.top_k], queue=f"{args.install}.embed"
    )
    try:
        result = sent.get(timeout=args.timeout)
    except Exception as exc:  # a failed task raises TaskError(code, message)
        code, message = exc.args if len(exc.args) == 2 else ("no_result", str(exc))
        print(f"error: {code}: {message}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
