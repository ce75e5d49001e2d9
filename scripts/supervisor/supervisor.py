"""Start, stop and report the local services (scripts/local_services.py, the test servers): the MongoDB-protocol
server (SecantusDB), Redis, a Chroma server, Celery workers and the dashboard, each on 127.0.0.1.

All of it is private: `start` sets umask 077 before it spawns anything (the servers inherit it) and tightens an
existing data folder (services.storage.private_files). A service that already answers at its configured address
is left alone; `stop` only ends processes whose pid file `start` wrote and which are still the very process it
started (same pid, start time and program), so it never kills a foreign or a pid-reused process.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from typing import Any

from scripts.supervisor import processes
from scripts.supervisor.catalogue import Service, data_dir, services
from services.config import Settings, redact
from services.storage.private_files import private_mkdir, secure_process

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0  # SecantusDB takes ~3.5 s to shut down cleanly on SIGTERM


def owned_pid(svc: Service) -> int | None:
    """The pid of the service's process when it is the very one `start` started and still runs."""
    return processes.owned_pid(svc.pid_file, svc.program)


# --- status --------------------------------------------------------------------------------------


def _service_status(svc: Service) -> dict[str, Any]:
    pid = owned_pid(svc)
    return {svc.address_key: redact(svc.address), "up": svc.probe(), "managed": pid is not None, "pid": pid}


def status(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each service -> its address, whether it answers, whether `start` started it, its pid."""
    svcs = services(settings)
    report = {name: _service_status(svcs[name]) for name in ("mongo", "redis")}
    report["dashboard"] = _service_status(svcs["dashboard"])
    for name in (n for n in svcs if n.startswith("worker-")):
        report[name] = {k: v for k, v in _service_status(svcs[name]).items() if k != "url"}
    if settings.chroma_mode == "embedded":
        url = f"embedded:{data_dir(settings) / 'chroma'}"
        report["chroma"] = {"url": url, "up": True, "mode": "embedded", "managed": False, "pid": None}
    else:
        report["chroma"] = {**_service_status(svcs["chroma"]), "mode": "server"}
    return report


# --- start ---------------------------------------------------------------------------------------


def _spawn(svc: Service, executable: str) -> subprocess.Popen[bytes]:
    private_mkdir(svc.workdir)
    argv = [executable, *svc.args]
    proc = processes.spawn(argv, svc.workdir, processes.child_env(dict(svc.env)), svc.log_file, svc.pid_file)
    log.info("started %s (pid %d), log: %s", svc.name, proc.pid, svc.log_file)
    return proc


def _launch(svc: Service) -> subprocess.Popen[bytes] | str:
    """Start `svc` unless it answers already; a Popen to wait for, or a problem, or '' for nothing to do."""
    if svc.probe():
        pid = owned_pid(svc)
        whose = f"started by this tool, pid {pid}" if pid else "not started by this tool"
        log.info("%s already answers at %s (%s)", svc.name, redact(svc.address), whose)
        return ""
    pid = owned_pid(svc)
    if pid is not None:
        return f"{svc.name} (our pid {pid}) runs but does not answer at {redact(svc.address)}; see {svc.log_file}"
    svc.pid_file.unlink(missing_ok=True)  # stale: its process is gone
    if not svc.startable:
        return f"{svc.name} does not answer at {redact(svc.address)}, and this tool starts services on 127.0.0.1 only"
    executable = processes.find_program(svc.program)
    if executable is None:
        return f"{svc.name} is not up and {svc.program} is not installed: {svc.install_hint}"
    return _spawn(svc, executable)


def _wait_until_up(pending: dict[Service, subprocess.Popen[bytes]], timeout: float) -> list[str]:
    """Wait until every started service answers; a problem per one that exits or times out."""
    problems: list[str] = []
    t0 = time.monotonic()
    while pending:
        for svc, proc in list(pending.items()):
            failure = ""
            if svc.probe():
                log.info("%s is up at %s after %.1f s", svc.name, redact(svc.address), time.monotonic() - t0)
            elif proc.poll() is not None:
                last = processes.last_log_line(svc.log_file)
                failure = f"{svc.name} exited with code {proc.returncode} while starting ({last!r}); see {svc.log_file}"
            elif time.monotonic() - t0 > timeout:
                failure = f"{svc.name} did not answer at {redact(svc.address)} in {timeout:.0f} s; see {svc.log_file}"
                processes.terminate(proc, STOP_TIMEOUT_S)
            else:
                continue
            del pending[svc]
            if failure:
                problems.append(failure)
                svc.pid_file.unlink(missing_ok=True)
        if pending:
            time.sleep(0.2)
    return problems


def _start(wanted: list[Service], timeout: float) -> list[str]:
    problems: list[str] = []
    pending: dict[Service, subprocess.Popen[bytes]] = {}
    for svc in wanted:
        outcome = _launch(svc)
        if isinstance(outcome, str):
            problems += [outcome] if outcome else []
        else:
            pending[svc] = outcome
    return problems + _wait_until_up(pending, timeout)


def start(
    settings: Settings, *, workers: int = 0, dashboard: bool = False, timeout: float = START_TIMEOUT_S
) -> list[str]:
    """Start mongo, redis, the Chroma server (unless FACEREG_CHROMA_MODE=embedded), N workers and the dashboard
    where they do not answer; the problems, empty when all are up. Workers and the dashboard start after the
    servers they need.

    First the umask becomes 077 (the children inherit it) and the data folder is created 0700 and tightened.
    """
    secure_process(data_dir(settings))
    svcs = services(settings, workers)
    chroma = [svcs["chroma"]] if settings.chroma_mode == "server" else []
    problems = _start([svcs["mongo"], svcs["redis"], *chroma], timeout)
    apps = [svcs[f"worker-{i}"] for i in range(workers)] + ([svcs["dashboard"]] if dashboard else [])
    if apps and not problems:
        problems = _start(apps, timeout)
    return problems


# --- stop ----------------------------------------------------------------------------------------


def _signal_ours(settings: Settings) -> tuple[dict[Service, int], list[str]]:
    """SIGTERM to every process `start` started (stale pid files removed); those signalled, and the problems."""
    problems: list[str] = []
    targets: dict[Service, int] = {}
    for svc in services(settings).values():
        pid = owned_pid(svc)
        if pid is None:
            if svc.pid_file.exists():
                log.info("%s: removing stale pid file %s (its process is gone or not ours)", svc.name, svc.pid_file)
            svc.pid_file.unlink(missing_ok=True)
        elif problem := processes.send_signal(pid, signal.SIGTERM):
            problems.append(f"{svc.name}: {problem}")
        else:
            log.info("stopping %s (pid %d)", svc.name, pid)
            targets[svc] = pid
    return targets, problems


def stop(settings: Settings, *, timeout: float = STOP_TIMEOUT_S) -> list[str]:
    """Stop what `start` started (SIGTERM, then SIGKILL); the problems, empty when all are down."""
    targets, problems = _signal_ours(settings)
    stubborn = processes.wait_gone(targets, owned_pid, timeout)
    for svc, pid in stubborn.items():
        log.warning("%s (pid %d) ignored SIGTERM for %.0f s: sending SIGKILL", svc.name, pid, timeout)
        processes.send_signal(pid, signal.SIGKILL)
    survivors = processes.wait_gone(stubborn, owned_pid, 5.0)
    for svc in targets:
        if svc not in survivors:
            svc.pid_file.unlink(missing_ok=True)
    return problems + [f"{svc.name} (pid {pid}) is still running after SIGKILL" for svc, pid in survivors.items()]
