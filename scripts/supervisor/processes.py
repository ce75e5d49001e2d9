"""The processes the supervisor starts: launched in their own session with a private log, recorded in a pid file
with their start time, and recognised later only while that very process (pid, start time, program) runs, so a
foreign or pid-reused process is never taken for ours."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from services.config import without_settings
from services.storage.private_files import open_private_log, write_private

PROC = Path("/proc")
K = TypeVar("K")


# --- process identity ----------------------------------------------------------------------------


def _ps(pid: int, field: str) -> str | None:
    """One `ps` field of the process (systems without /proc), or None when it is gone."""
    out = subprocess.run(["ps", "-o", f"{field}=", "-p", str(pid)], capture_output=True, text=True, check=False)
    return out.stdout.strip() or None


def _cmdline(pid: int) -> str | None:
    """The process's command line, or None when it is gone (a zombie's is empty)."""
    if not PROC.is_dir():
        return _ps(pid, "args")
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or None


def start_time(pid: int) -> str | None:
    """When the process started (clock ticks since boot on Linux); with the pid it names one process."""
    if not PROC.is_dir():
        return _ps(pid, "lstart")
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return fields[19] if len(fields) > 19 else None


# --- pid files -----------------------------------------------------------------------------------


def _read_pid_file(path: Path) -> tuple[int, str] | None:
    """(pid, start time) from a pid file written by `spawn`, or None."""
    try:
        pid, _, started = path.read_text().strip().partition(" ")
        return (int(pid), started) if started else None
    except (OSError, ValueError):
        return None


def owned_pid(pid_file: Path, program: str) -> int | None:
    """The pid in `pid_file` when that process is alive and is still the very one `spawn` started."""
    recorded = _read_pid_file(pid_file)
    if recorded is None:
        return None
    pid, started = recorded
    cmd = _cmdline(pid)
    return pid if cmd and program in cmd and start_time(pid) == started else None


def alive(pid_file: Path, program: str) -> bool:
    """The process recorded in `pid_file` runs (the probe of a worker: it reconnects to the broker by itself)."""
    return owned_pid(pid_file, program) is not None


# --- starting ------------------------------------------------------------------------------------


def find_program(program: str) -> str | None:
    """The virtualenv's own copy first (the venv may not be on PATH), then PATH."""
    beside = Path(sys.executable).parent / program
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which(program)


def child_env(settings_vars: Mapping[str, str]) -> dict[str, str]:
    """A child's environment: this process's, with its FACEREG_* settings replaced by `settings_vars` whole
    (a setting left out there is not inherited either)."""
    return {**without_settings(os.environ), **settings_vars}


def launch(argv: Sequence[str], cwd: Path, env: Mapping[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    """Start `argv` in its own session (it outlives this CLI and its terminal's signals), stdout and stderr
    appended to the private `log_file`."""
    with open_private_log(log_file) as logf:
        logf.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        logf.flush()
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def spawn(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], log_file: Path, pid_file: Path
) -> subprocess.Popen[bytes]:
    """`launch`, then record the process in the private `pid_file`."""
    proc = launch(argv, cwd, env, log_file)
    write_private(pid_file, f"{proc.pid} {start_time(proc.pid)}\n".encode())
    return proc


def last_log_line(path: Path) -> str:
    """The last non-blank line of a log (200 characters at most), '' when there is none."""
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


# --- stopping ------------------------------------------------------------------------------------


def terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds; returns once it has exited."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def send_signal(pid: int, sig: signal.Signals) -> str:
    """Signal `pid`; '' when sent or the process is gone already, else the problem."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        return f"not allowed to signal pid {pid}"
    return ""


def wait_gone(targets: Mapping[K, int], current: Callable[[K], int | None], timeout: float) -> dict[K, int]:
    """Those of `targets` (key -> pid) still alive after `timeout` seconds; `current(key)` is the pid the key
    names now (None: gone, or no longer ours)."""
    deadline = time.monotonic() + timeout
    alive_now = dict(targets)
    while alive_now and time.monotonic() < deadline:
        alive_now = {key: pid for key, pid in alive_now.items() if current(key) == pid}
        if alive_now:
            time.sleep(0.1)
    return {key: pid for key, pid in alive_now.items() if current(key) == pid}
