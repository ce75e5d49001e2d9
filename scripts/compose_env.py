"""Write the env file docker-compose.yml needs: the stores' credentials, as new random secrets.

  python scripts/compose_env.py                   writes .env.compose (mode 0600); never replaces an existing file
  python scripts/compose_env.py --output PATH     another file
  python scripts/compose_env.py --force           replaces the file with new secrets (see below)
  docker-compose --env-file .env.compose up -d    every docker-compose command needs --env-file

The file holds MONGO_ROOT_USER / MONGO_ROOT_PASSWORD (MongoDB's root user, which the services connect as),
REDIS_PASSWORD (redis-server --requirepass) and CHROMA_TOKEN (required by the proxy in front of Chroma).
Its name is not `.env`: the project's settings read `.env` (FACEREG_* variables) when run on the host,
and docker-compose would read it without being asked.

MongoDB takes MONGO_ROOT_* only when its data volume is created: after `--force` on a running deployment,
change the password in MongoDB too (README, "docker-compose"), or the services cannot sign in.
"""

from __future__ import annotations

import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

from scripts.cli import parser, run
from services.config import REPO_ROOT
from services.storage.private_files import write_private

DEFAULT_OUTPUT = REPO_ROOT / ".env.compose"
EXIT_REFUSED = 2


def new_secret(nbytes: int = 32) -> str:
    """A random URL-safe secret ([A-Za-z0-9_-]: needs no quoting in a URL, a shell or the env file) that does
    not start with '-', so that no command line reads it as an option."""
    while True:
        value = secrets.token_urlsafe(nbytes)
        if not value.startswith("-"):
            return value


def render(mongo_user: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""\
# docker-compose secrets for facereg, written by scripts/compose_env.py ({stamp}).
# Private: mode 0600, git-ignored. Use it with every command: docker-compose --env-file .env.compose ...
# Variables set in the shell take precedence over this file.
# MongoDB takes MONGO_ROOT_* only when its data volume is created (README, "docker-compose").
MONGO_ROOT_USER={mongo_user}
MONGO_ROOT_PASSWORD={new_secret()}
REDIS_PASSWORD={new_secret()}
CHROMA_TOKEN={new_secret()}

# Optional, with their defaults:
# FACEREG_DASHBOARD_PORT=8501
# FACEREG_MODEL_HOST_DIR=./models
# FACEREG_MODEL=auto
# FACEREG_DEVICE=auto
# FACEREG_WORKER_THREADS=2
"""


def write_env(path: Path, text: str, force: bool) -> None:
    """Create `path` 0600 from the start (O_EXCL: never through an existing file or link); with `force`,
    replace it at once through a private temporary file (services.storage.private_files.write_private)."""
    if force:
        write_private(path, text.encode(), durable=True)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def main() -> int:
    cli = parser(__doc__)
    cli.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"default: {DEFAULT_OUTPUT}")
    cli.add_argument("--force", action="store_true", help="replace an existing file with new secrets")
    cli.add_argument("--mongo-user", default="facereg", help="MongoDB root user name (default: facereg)")
    args = cli.parse_args()
    if not args.mongo_user.replace("_", "").replace("-", "").isalnum():
        cli.error("--mongo-user: letters, digits, '_' and '-' only (it goes into a URL unquoted)")
    path: Path = args.output
    try:
        write_env(path, render(args.mongo_user), args.force)
    except FileExistsError:
        print(f"error: {path} exists; keep it, or pass --force to replace its secrets", file=sys.stderr)
        return EXIT_REFUSED
    except FileNotFoundError:
        print(f"error: no directory {path.parent}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"wrote {path} (mode 0600); now: docker-compose --env-file {path} up -d")
    return 0


if __name__ == "__main__":
    run(main)
