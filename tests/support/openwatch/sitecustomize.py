"""Test-only, on when this folder is on a child process's PYTHONPATH: with FACEREG_TEST_OPEN_WATCH (paths
separated by os.pathsep) and FACEREG_TEST_OPEN_LOG set, every open() or os.open() whose real path is a
watched one is appended to the log, proof that the process never read a file it must not."""

from __future__ import annotations

import os
import sys

_WATCH = {os.path.realpath(p) for p in os.environ.get("FACEREG_TEST_OPEN_WATCH", "").split(os.pathsep) if p}
_LOG = os.environ.get("FACEREG_TEST_OPEN_LOG", "")


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event != "open" or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    real = os.path.realpath(os.fsdecode(args[0]))  # type: ignore[arg-type]
    if real in _WATCH:
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{os.getpid()} {real}\n".encode(errors="backslashreplace"))
        finally:
            os.close(fd)


if _WATCH and _LOG:
    sys.addaudithook(_hook)
