"""Dashboard users: passwords stored as scrypt hashes in a JSON file, roles `admin` and `viewer`.

The file (FACEREG_DASHBOARD_USERS_FILE, default `<data dir>/dashboard_users.json`) maps a user name
to `{"role": ..., "hash": "scrypt$n$r$p$salt$digest"}`; `scripts/dashboard_users.py` edits it.

Every change is a read-modify-write under an exclusive `flock` on `<users file>.lock`, written to a
fresh temporary file in the same folder (mode 0600, fsynced) and moved over the users file with
`os.replace`, so parallel edits never lose a user and a reader sees the old file or the new one.
The users file is never followed through a symbolic link. User names are normalised (NFKC, casefold,
stripped) to a small ASCII alphabet, so look-alike names cannot sit beside the real one.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from services.storage.private_files import private_mkdir, write_private

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "viewer")
# scrypt cost: ~50 ms per check on these CPUs, 16 MB of memory.
N, R, P = 2**14, 8, 1
NAME_MAX = 64
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")
# Longer input is not normalised at all: it cannot become a valid name of at most NAME_MAX characters.
_NAME_INPUT_MAX = 4 * NAME_MAX


class UsersFileError(ValueError):
    """The users file cannot be read or holds an invalid entry."""


class InvalidUserName(ValueError):
    """A user name outside the allowed alphabet (after normalisation)."""


class UserExistsError(ValueError):
    """Adding a user that exists, without asking to replace them."""


class LastAdminError(ValueError):
    """The change would leave the dashboard without an administrator."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def normalize_name(name: str) -> str:
    """The canonical form of a user name: NFKC, casefolded, stripped; `a-z 0-9 . _ -`, 1-64, starts alphanumeric.

    `"ADMIN"` and `" admin "` become `"admin"`; a name with a character outside the alphabet (a Cyrillic
    look-alike, an inner space, a slash) raises InvalidUserName.
    """
    rule = f"a user name is 1-{NAME_MAX} of a-z 0-9 . _ - (after lower-casing), starting with a letter or digit"
    if len(name) > _NAME_INPUT_MAX:
        raise InvalidUserName(f"{rule}; this one is too long")
    folded = unicodedata.normalize("NFKC", name).casefold().strip()
    if not folded:
        raise InvalidUserName(f"{rule}; this one is empty")
    if len(folded) > NAME_MAX:
        raise InvalidUserName(f"{rule}; this one has {len(folded)} characters")
    if not folded.isascii() or _NAME_RE.fullmatch(folded) is None:
        odd = sorted({c for c in folded if not ("a" <= c <= "z" or "0" <= c <= "9" or c in "._-")})
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in odd) if odd else "its first character"
        raise InvalidUserName(f"{rule}; {name!r} is refused because of {shown}")
    return folded


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(_unb64(digest))
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, _unb64(digest))


def load_users(path: Path) -> dict[str, dict[str, str]]:
    """The users by normalised name; {} when the file does not exist. Never follows a symbolic link."""
    text = _read_no_follow(path)
    if text is None:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsersFileError(f"{path} cannot be read as JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise UsersFileError(f"{path} must hold a JSON object of users")
    users: dict[str, dict[str, str]] = {}
    for key, entry in data.items():
        if not isinstance(entry, dict) or entry.get("role") not in ROLES or not str(entry.get("hash", "")):
            raise UsersFileError(f"{path}: user {key!r} needs a role ({' or '.join(ROLES)}) and a hash")
        try:
            name = normalize_name(key)
        except InvalidUserName as exc:
            raise UsersFileError(f"{path}: user {key!r} has an invalid name; rename or remove it by hand") from exc
        if name in users:
            raise UsersFileError(f"{path}: users {key!r} and {name!r} are the same name; remove one by hand")
        users[name] = {"role": str(entry["role"]), "hash": str(entry["hash"])}
    return users


def authenticate(path: Path, name: str, password: str) -> User | None:
    """The user when name and password match; None otherwise, taking as long whatever was wrong."""
    users = load_users(path)
    try:
        key: str | None = normalize_name(name)
    except InvalidUserName:
        key = None
    entry = users.get(key) if key is not None else None
    if key is None or entry is None:
        # Same work as a real check, so a wrong name and a wrong password take as long.
        check_password(password, _DUMMY)
        return None
    if not check_password(password, entry["hash"]):
        return None
    role: Role = "admin" if entry["role"] == "admin" else "viewer"
    return User(key, role)


def credential_stamp(path: Path, name: str) -> str | None:
    """A short fingerprint of the user's stored hash and role; None when there is no such user (any more).

    A session keeps the stamp taken at sign-in and compares it on each interaction: a new password, a new
    role or the user's removal changes it. Raises UsersFileError when the file cannot be read.
    """
    try:
        key = normalize_name(name)
    except InvalidUserName:
        return None
    entry = load_users(path).get(key)
    if entry is None:
        return None
    material = "\0".join((key, entry["role"], entry["hash"])).encode()
    return hashlib.sha256(material).hexdigest()[:16]


def set_user(path: Path, name: str, role: Role, password: str, *, replace: bool = False) -> str:
    """Add a user, or with `replace` also replace an existing user's password and role; the stored name.

    Raises InvalidUserName, UserExistsError (exists and not `replace`), LastAdminError (would demote the
    only administrator), ValueError (role, short password) or UsersFileError.
    """
    key = normalize_name(name)
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    hashed = hash_password(password)  # outside the lock: ~50 ms of scrypt
    with _locked(path):
        users = load_users(path)
        old = users.get(key)
        if old is not None and not replace:
            raise UserExistsError(f"user {key!r} already exists in {path}; replacing them needs --replace")
        if old is not None and old["role"] == "admin" and role != "admin" and _admins(users) == {key}:
            raise LastAdminError(f"{key!r} is the only administrator; add another admin before demoting them")
        users[key] = {"role": role, "hash": hashed}
        _write(path, users)
    return key


def remove_user(path: Path, name: str) -> bool:
    """Remove a user; False when there is none of that name. Removing the only administrator is refused."""
    key = normalize_name(name)
    with _locked(path):
        users = load_users(path)
        entry = users.get(key)
        if entry is None:
            return False
        if entry["role"] == "admin" and _admins(users) == {key}:
            raise LastAdminError(f"{key!r} is the only administrator; add another admin before removing them")
        del users[key]
        _write(path, users)
    return True


def _admins(users: dict[str, dict[str, str]]) -> set[str]:
    return {name for name, entry in users.items() if entry["role"] == "admin"}


def _read_no_follow(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsersFileError(f"{path} is a symbolic link; refusing to follow it (use the real file)") from exc
        raise UsersFileError(f"{path} cannot be opened ({exc})") from exc
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise UsersFileError(f"{path} is not a regular file")
        try:
            return fh.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsersFileError(f"{path} cannot be read ({exc})") from exc


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive flock on `<users file>.lock` (created 0600; the folder 0700 when it is created here)."""
    private_mkdir(path.parent)
    lock = _lock_path(path)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise UsersFileError(f"the lock file {lock} cannot be opened ({exc})") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write(path: Path, users: dict[str, dict[str, str]]) -> None:
    """Replace the users file atomically through a unique 0600 temporary file, fsynced (storage.private_files)."""
    write_private(path, json.dumps(users, indent=2, sort_keys=True).encode() + b"\n", durable=True)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


_DUMMY = f"scrypt${N}${R}${P}${_b64(b'0' * 16)}${_b64(b'0' * 32)}"
