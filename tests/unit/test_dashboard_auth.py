"""Dashboard users: scrypt hashes, the users file, and sign-in that tells nothing about which part was wrong."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from dashboard.auth import (
    InvalidUserName,
    LastAdminError,
    UserExistsError,
    UsersFileError,
    authenticate,
    check_password,
    credential_stamp,
    hash_password,
    load_users,
    normalize_name,
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


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("admin", "admin"), ("ADMIN", "admin"), (" Admin\t", "admin"), ("ＡＤＭＩＮ", "admin"), ("a.b_c-9", "a.b_c-9")],
)
def test_names_are_normalised(typed: str, stored: str) -> None:
    assert normalize_name(typed) == stored


@pytest.mark.parametrize(
    "name",
    [
        "\u0430dmin",  # Cyrillic a
        "adm\u0131n",  # dotless i
        "admin\u200b",  # zero-width space
        "ad min",
        ".admin",
        "_admin",
        "-admin",
        "a/b",
        "   ",
        "é",
        "x" * 65,
        "x" * 10_000,
    ],
)
def test_look_alike_and_odd_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidUserName, match="a-z 0-9"):
        normalize_name(name)
    with pytest.raises(ValueError):
        set_user(tmp_path / "u.json", name, "viewer", "long-enough")
    assert not (tmp_path / "u.json").exists()


def test_a_look_alike_of_an_existing_name_collides(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    set_user(path, "admin", "admin", "admin-password")
    with pytest.raises(UserExistsError, match="already exists"):
        set_user(path, "ADMIN", "admin", "other-password")
    with pytest.raises(UserExistsError):
        set_user(path, " admin ", "viewer", "other-password")
    with pytest.raises(InvalidUserName):
        set_user(path, "\u0430dmin", "admin", "other-password")
    assert list(load_users(path)) == ["admin"]
    assert authenticate(path, "admin", "admin-password") is not None
    assert authenticate(path, "admin", "other-password") is None


def test_sign_in_normalises_the_typed_name(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    set_user(path, "Alice", "admin", "alice-password")
    assert list(load_users(path)) == ["alice"]
    for typed in ("alice", "ALICE", " Alice ", "ＡＬＩＣＥ"):
        user = authenticate(path, typed, "alice-password")
        assert user is not None and user.name == "alice" and user.is_admin
    assert authenticate(path, "\u0430lice", "alice-password") is None
    assert authenticate(path, "", "alice-password") is None


def test_an_invalid_name_costs_a_hash_check_like_a_wrong_password(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    set_user(path, "alice", "admin", "alice-password")

    def best_of_3(name: str, password: str) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            assert authenticate(path, name, password) is None
            times.append(time.perf_counter() - t0)
        return min(times)

    wrong_password = best_of_3("alice", "not-the-password")
    assert best_of_3("\u0430lice", "alice-password") > 0.3 * wrong_password
    assert best_of_3("nobody", "alice-password") > 0.3 * wrong_password


def test_replacing_needs_replace(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    set_user(path, "alice", "admin", "alice-password")
    set_user(path, "bob", "viewer", "bob-password")
    with pytest.raises(UserExistsError, match="replace"):
        set_user(path, "bob", "viewer", "new-bob-password")
    assert set_user(path, "BOB", "admin", "new-bob-password", replace=True) == "bob"
    assert authenticate(path, "bob", "bob-password") is None
    bob = authenticate(path, "bob", "new-bob-password")
    assert bob is not None and bob.is_admin
    assert set_user(path, "carol", "viewer", "carol-password", replace=True) == "carol"  # new user: fine too


def test_the_last_admin_is_neither_removed_nor_demoted(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    set_user(path, "alice", "admin", "alice-password")
    set_user(path, "bob", "viewer", "bob-password")
    with pytest.raises(LastAdminError, match="only administrator"):
        remove_user(path, "alice")
    with pytest.raises(LastAdminError):
        set_user(path, "ALICE", "viewer", "alice-password2", replace=True)
    set_user(path, "alice", "admin", "alice-password2", replace=True)  # a new password keeps the role: fine
    assert authenticate(path, "alice", "alice-password2") is not None
    assert remove_user(path, "bob")  # viewers go freely
    set_user(path, "dave", "admin", "dave-password")
    set_user(path, "alice", "viewer", "alice-password3", replace=True)  # another admin exists now
    assert {n: e["role"] for n, e in load_users(path).items()} == {"alice": "viewer", "dave": "admin"}
    with pytest.raises(LastAdminError):
        remove_user(path, "dave")
    set_user(path, "erin", "admin", "erin-password")
    assert remove_user(path, " DAVE ")
    assert {n: e["role"] for n, e in load_users(path).items()} == {"alice": "viewer", "erin": "admin"}


def test_credential_stamp_changes_with_password_role_and_removal(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    assert credential_stamp(path, "alice") is None
    set_user(path, "alice", "admin", "alice-password")
    set_user(path, "bob", "admin", "bob-password")
    stamp = credential_stamp(path, "alice")
    assert stamp is not None and len(stamp) == 16 and int(stamp, 16) >= 0
    assert credential_stamp(path, "ALICE") == stamp == credential_stamp(path, "alice")
    assert credential_stamp(path, "bob") not in (None, stamp)
    set_user(path, "bob", "viewer", "bob-password2", replace=True)
    assert credential_stamp(path, "alice") == stamp  # another user's change leaves it alone
    set_user(path, "alice", "admin", "alice-password", replace=True)  # same password, new salt
    new = credential_stamp(path, "alice")
    assert new is not None and new != stamp
    # Only the role changes: the stamp still changes.
    entry = load_users(path)["alice"]
    path.write_text(json.dumps({**load_users(path), "alice": {**entry, "role": "viewer"}}))
    assert credential_stamp(path, "alice") not in (None, new)
    path.write_text(json.dumps({**load_users(path), "bob": {**load_users(path)["bob"], "role": "admin"}}))
    assert remove_user(path, "alice")
    assert credential_stamp(path, "alice") is None
    assert credential_stamp(path, "\u0430lice") is None


def test_files_and_folder_are_private(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "new" / "users.json"
        set_user(path, "alice", "admin", "alice-password")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lock = path.with_name("users.json.lock")
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["users.json", "users.json.lock"]


def test_a_symlinked_users_file_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    set_user(real, "alice", "admin", "alice-password")
    before = real.read_bytes()
    link = tmp_path / "users.json"
    link.symlink_to(real)
    with pytest.raises(UsersFileError, match="symbolic link"):
        load_users(link)
    with pytest.raises(UsersFileError, match="symbolic link"):
        authenticate(link, "alice", "alice-password")
    with pytest.raises(UsersFileError, match="symbolic link"):
        set_user(link, "bob", "viewer", "bob-password")
    with pytest.raises(UsersFileError, match="symbolic link"):
        remove_user(link, "alice")
    assert link.is_symlink() and real.read_bytes() == before
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "nowhere.json")
    with pytest.raises(UsersFileError, match="symbolic link"):
        set_user(dangling, "bob", "viewer", "bob-password")
    assert not (tmp_path / "nowhere.json").exists()


def test_leftover_temporary_files_are_neither_used_nor_followed(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    leftover = tmp_path / "users.json.tmp"
    leftover.write_text("{}")
    leftover.chmod(0o644)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("keep me")
    (tmp_path / "users.tmp").symlink_to(elsewhere)  # the name the old code used
    set_user(path, "alice", "admin", "alice-password")
    set_user(path, "bob", "viewer", "bob-password")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and not path.is_symlink()
    assert leftover.read_text() == "{}" and stat.S_IMODE(leftover.stat().st_mode) == 0o644
    assert elsewhere.read_text() == "keep me" and (tmp_path / "users.tmp").is_symlink()
    assert set(load_users(path)) == {"alice", "bob"}


def test_names_in_the_file_are_read_normalised(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    entry = {"role": "admin", "hash": hash_password("alice-password")}
    path.write_text(json.dumps({"Alice": entry}))
    assert list(load_users(path)) == ["alice"]
    assert authenticate(path, "alice", "alice-password") is not None
    path.write_text(json.dumps({"alice": entry, "ALICE": entry}))
    with pytest.raises(UsersFileError, match="same name"):
        load_users(path)
    path.write_text(json.dumps({"\u0430lice": entry}))
    with pytest.raises(UsersFileError, match="invalid name"):
        load_users(path)
