"""Test-only watches of a child process, on when this folder is on its PYTHONPATH:

- FACEREG_TEST_OPEN_WATCH (paths separated by os.pathsep) and FACEREG_TEST_OPEN_LOG: every open() or os.open()
  whose real path is a watched one is appended to the log, proof that the process never read it;
- FACEREG_TEST_PEAK_LOG: the process's own peak resident memory (VmHWM, KiB) is appended when Python finishes,
  after every other exit handler and before the interpreter and torch's libraries are torn down (which adds
  about 180-450 MB of library pages and is not the work of handling an input). ru_maxrss cannot serve: exec
  keeps the peak of the memory the child was forked with, the size of its parent.
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path

_WATCH = {os.path.realpath(p) for p in os.environ.get("FACEREG_TEST_OPEN_WATCH", "").split(os.pathsep) if p}
_LOG = os.environ.get("FACEREG_TEST_OPEN_LOG", "")
_PEAK_LOG = os.environ.get("FACEREG_TEST_PEAK_LOG", "")


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


def _write_peak() -> None:
    status = Path("/proc/self/status").read_text()
    peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    with open(_PEAK_LOG, "a") as f:
        f.write(f"{os.getpid()} {peak}\n")


if _WATCH and _LOG:
    sys.addaudithook(_hook)
if _PEAK_LOG:
    atexit.register(_write_peak)  # registered first, so it runs after every other exit handler
