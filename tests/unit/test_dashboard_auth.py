"""Dashboard users: scrypt hashes, the users file, and sign-in that tells nothing about which part was wrong."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from dashboard.auth import (
    UsersFileError,
    authenticate,
    check_password,
    hash_password,
    load_users,
    remove_user,
    set_user,
)


def test_hash_is_salted_and_checks_only_the_right_password() -> None:
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b and a.startswith("scrypt$")
    assert "correct horse" not in a
    assert check_password("correct horse", a) and check_password("correct horse", b)
    assert not check_password("correct horsE", a)
    assert not check_password("", a)


@pytest.mark.parametrize("stored", ["", "plain", "scrypt$1$2$3", "md5$16384$8$1$AAAA$AAAA", "scrypt$x$8$1$AA$AA"])
def test_malformed_hashes_never_match(stored: str) -> None:
    assert not check_password("anything", stored)


def test_short_passwords_are_refused() -> None:
    with pytest.raises(ValueError, match="8 characters"):
        hash_password("short")


def test_users_file_round_trip_and_permissions(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "users.json"
    set_user(path, "alice", "admin", "alice-password")
    set_user(path, "bob", "viewer", "bob-password")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "alice-password" not in path.read_text()
    assert {n: e["role"] for n, e in load_users(path).items()} == {"alice": "admin", "bob": "viewer"}
    alice = authenticate(path, "alice", "alice-password")
    assert alice is not None and alice.is_admin
    bob = authenticate(path, " bob ", "bob-password")
    assert bob is not None and not bob.is_admin
    assert authenticate(path, "alice", "bob-password") is None
    assert authenticate(path, "carol", "alice-password") is None
    assert remove_user(path, "bob") and not remove_user(path, "bob")
    assert authenticate(path, "bob", "bob-password") is None


def test_no_file_means_no_users(tmp_path: Path) -> None:
    assert load_users(tmp_path / "missing.json") == {}
    assert authenticate(tmp_path / "missing.json", "admin", "whatever-pw") is None


@pytest.mark.parametrize(
    "content",
    ["{not json", "[]", json.dumps({"x": {"role": "root", "hash": "h"}}), json.dumps({"x": {"role": "admin"}})],
)
def test_a_broken_users_file_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "users.json"
    path.write_text(content)
    with pytest.raises(UsersFileError):
        load_users(path)


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "../etc"])
def test_bad_user_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        set_user(tmp_path / "u.json", name, "viewer", "long-enough")
