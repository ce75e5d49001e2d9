"""scripts/dashboard_users.py run as an operator runs it: real processes, in parallel, on a real users file."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from dashboard.auth import authenticate, hash_password, load_users, set_user
from services.config import REPO_ROOT, Settings
from services.storage.db import connect
from services.storage.signin_throttle import MAX_USER_FAILURES, SigninThrottle
from tests.conftest import machine_now

SCRIPT = REPO_ROOT / "scripts" / "dashboard_users.py"


def _cmd(users: Path) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "FACEREG_DASHBOARD_USERS_FILE": str(users)}
    return [sys.executable, str(SCRIPT)], env


def cli(
    users: Path, *args: str, stdin: bytes = b"", umask: int = -1, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd, base = _cmd(users)
    env = {**base, **(env or {})}
    proc = subprocess.run(
        [*cmd, *args], input=stdin, env=env, cwd=REPO_ROOT, capture_output=True, timeout=120, umask=umask, check=False
    )
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def roles(users: Path) -> dict[str, str]:
    return {name: entry["role"] for name, entry in load_users(users).items()}


def test_parallel_adds_keep_every_user(tmp_path: Path) -> None:
    users = tmp_path / "conf" / "users.json"
    cmd, env = _cmd(users)
    procs = [
        subprocess.Popen(
            [*cmd, "add", f"user{i}", "--role", "viewer", "--password-stdin"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO_ROOT,
        )
        for i in range(8)
    ]
    for i, proc in enumerate(procs):
        assert proc.stdin is not None
        proc.stdin.write(f"password-{i}\n".encode())
        proc.stdin.close()
    # A reader meanwhile sees the old file or a new one, never a half-written one.
    while any(p.poll() is None for p in procs):
        assert len(load_users(users)) <= 8
        time.sleep(0.005)
    for proc in procs:
        assert proc.stderr is not None and proc.stdout is not None
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        assert proc.wait(timeout=120) == 0, err.decode()
    assert roles(users) == {f"user{i}": "viewer" for i in range(8)}
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    assert stat.S_IMODE(users.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in users.parent.iterdir()) == ["users.json", "users.json.lock"]
    assert authenticate(users, "user5", "password-5") is not None
    assert authenticate(users, "user5", "password-4") is None


def test_existing_users_need_replace_and_the_last_admin_stays(tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    assert cli(users, "add", "admin", "--role", "admin", "--password-stdin", stdin=b"admin-password\n").returncode == 0
    before = load_users(users)

    proc = cli(users, "add", "admin", "--role", "admin", "--password-stdin", stdin=b"other-password\n")
    assert proc.returncode != 0 and "--replace" in proc.stderr
    proc = cli(users, "add", "--role", "viewer", "--password-stdin", "--", " admin ", stdin=b"other-password\n")
    assert proc.returncode != 0 and "already exists" in proc.stderr
    proc = cli(users, "add", "admin", "--role", "viewer", "--if-missing", "--password-stdin", stdin=b"other-pw-1\n")
    assert proc.returncode == 0 and "already exists" in proc.stdout
    proc = cli(users, "add", "admin", "--role", "viewer", "--replace", "--password-stdin", stdin=b"other-password\n")
    assert proc.returncode != 0 and "only administrator" in proc.stderr
    proc = cli(users, "remove", "admin")
    assert proc.returncode != 0 and "only administrator" in proc.stderr
    assert load_users(users) == before
    assert authenticate(users, "admin", "admin-password") is not None

    proc = cli(users, "add", "admin", "--role", "admin", "--replace", "--password-stdin", stdin=b"new-admin-pw\n")
    assert proc.returncode == 0, proc.stderr
    assert authenticate(users, "admin", "new-admin-pw") is not None
    assert cli(users, "add", "root", "--role", "admin", "--generate").returncode == 0
    proc = cli(users, "remove", "ADMIN")
    assert proc.returncode == 0, proc.stderr
    assert roles(users) == {"root": "admin"}
    proc = cli(users, "remove", "admin")
    assert proc.returncode == 1 and "no user" in proc.stderr
    assert cli(users, "list").stdout == "root\tadmin\n"


def test_look_alike_names(tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    assert cli(users, "add", "admin", "--role", "admin", "--password-stdin", stdin=b"admin-password\n").returncode == 0
    proc = cli(users, "add", "ADMIN", "--role", "viewer", "--password-stdin", stdin=b"other-password\n")
    assert proc.returncode != 0 and "'admin' already exists" in proc.stderr
    for name in ("\u0430dmin", "ad min", ".admin"):
        proc = cli(users, "add", name, "--role", "admin", "--password-stdin", stdin=b"other-password\n")
        assert proc.returncode == 2 and "a-z 0-9" in proc.stderr, proc.stderr
    assert "U+0430" in cli(users, "add", "\u0430dmin", "--role", "admin", "--generate").stderr
    assert roles(users) == {"admin": "admin"}
    assert authenticate(users, "ADMIN", "admin-password") is not None


@pytest.mark.parametrize("ending", [b"\r\n", b"\n", b"\r", b""])
def test_password_stdin_strips_only_the_line_ending(tmp_path: Path, ending: bytes) -> None:
    users = tmp_path / "users.json"
    proc = cli(users, "add", "admin", "--role", "admin", "--password-stdin", stdin=b"secret-pass-1" + ending)
    assert proc.returncode == 0, proc.stderr
    assert authenticate(users, "admin", "secret-pass-1") is not None
    assert authenticate(users, "admin", "secret-pass-1\r") is None


def test_inner_and_leading_whitespace_of_a_password_is_kept(tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    assert cli(users, "add", "a", "--role", "admin", "--password-stdin", stdin=b" pass word \r\n").returncode == 0
    assert authenticate(users, "a", " pass word ") is not None
    assert authenticate(users, "a", "pass word") is None


def test_a_symlinked_users_file_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    set_user(real, "admin", "admin", "admin-password")
    before = real.read_bytes()
    users = tmp_path / "users.json"
    users.symlink_to(real)
    for args in (["add", "bob", "--role", "viewer", "--password-stdin"], ["remove", "admin"], ["list"]):
        proc = cli(users, *args, stdin=b"bob-password\n")
        assert proc.returncode == 2 and "symbolic link" in proc.stderr, proc.stderr
    assert users.is_symlink() and real.read_bytes() == before


@pytest.mark.parametrize("kind", ["world-readable", "symlink"])
def test_a_leftover_tmp_file_is_left_alone(tmp_path: Path, kind: str) -> None:
    users = tmp_path / "users.json"
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text("keep me")
    for leftover in (tmp_path / "users.json.tmp", tmp_path / "users.tmp"):
        if kind == "symlink":
            leftover.symlink_to(elsewhere)
        else:
            leftover.write_text(json.dumps({"mallory": {"role": "admin", "hash": hash_password("mallory-pw")}}))
            leftover.chmod(0o644)
    snapshot = {p.name: (p.is_symlink(), p.read_bytes()) for p in tmp_path.iterdir()}
    for i in range(2):
        proc = cli(users, "add", f"u{i}", "--role", "admin", "--password-stdin", stdin=b"password-1\n", umask=0o022)
        assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(users.stat().st_mode) == 0o600 and not users.is_symlink()
    assert roles(users) == {"u0": "admin", "u1": "admin"}
    assert elsewhere.read_text() == "keep me"
    assert {p.name: (p.is_symlink(), p.read_bytes()) for p in tmp_path.iterdir() if p.name in snapshot} == snapshot
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*snapshot, "users.json", "users.json.lock"])


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_the_umask_does_not_matter(tmp_path: Path, umask: int) -> None:
    users = tmp_path / "new" / "users.json"
    proc = cli(users, "add", "admin", "--role", "admin", "--password-stdin", stdin=b"admin-password\n", umask=umask)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    assert stat.S_IMODE(users.with_name("users.json.lock").stat().st_mode) == 0o600
    assert stat.S_IMODE(users.parent.stat().st_mode) == 0o700
    proc = cli(users, "add", "bob", "--role", "viewer", "--password-stdin", stdin=b"bob-password\n", umask=umask)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(users.stat().st_mode) == 0o600


def test_a_sign_in_lock_shows_in_list_and_an_admin_lifts_it(infra: Settings, tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    set_user(users, "alice", "admin", "alice-password-1")
    set_user(users, "bob", "viewer", "bob-password-1")
    uri = infra.mongo_uri.rsplit("/", 1)[0] + f"/locks{uuid.uuid4().hex[:8]}"
    throttle = SigninThrottle(connect(uri))
    # The CLI is another process on the machine's clock, not on this test's (pytest --clock moves ours).
    now = machine_now()
    for _ in range(MAX_USER_FAILURES):
        throttle.record_failure("alice", "198.51.100.4", now)
    env = {"FACEREG_MONGO_URI": uri, "FACEREG_TIMEZONE": "Asia/Kolkata"}
    listed = cli(users, "list", env=env)
    assert listed.returncode == 0, listed.stderr
    lines = dict(line.split("\t", 1) for line in listed.stdout.splitlines())
    assert lines["alice"].startswith("admin\tlocked until ") and lines["alice"].endswith("IST")
    assert lines["bob"] == "viewer"
    unlocked = cli(users, "unlock", "ALICE", env=env)
    assert (unlocked.returncode, unlocked.stdout.strip()) == (0, "alice unlocked")
    assert "locked" not in cli(users, "list", env=env).stdout
    assert throttle.active_lock("alice", "198.51.100.4", now) is None
    entry = throttle.locks.database["audit"].find_one({"action": "signin_unlocked"})
    assert entry is not None and entry["subject"] == "user:alice"
