"""Dashboard users: passwords stored as scrypt hashes in a JSON file, roles `admin` and `viewer`.

The file (FACEREG_DASHBOARD_USERS_FILE, default `<data dir>/dashboard_users.json`) maps a user name
to `{"role": ..., "hash": "scrypt$n$r$p$salt$digest"}`; `scripts/dashboard_users.py` edits it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "viewer")
# scrypt cost: ~50 ms per check on these CPUs, 16 MB of memory.
N, R, P = 2**14, 8, 1


class UsersFileError(ValueError):
    """The users file cannot be read or holds an invalid entry."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


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
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsersFileError(f"{path} cannot be read as JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise UsersFileError(f"{path} must hold a JSON object of users")
    for name, entry in data.items():
        if not isinstance(entry, dict) or entry.get("role") not in ROLES or not str(entry.get("hash", "")):
            raise UsersFileError(f"{path}: user {name!r} needs a role ({' or '.join(ROLES)}) and a hash")
    return data


def authenticate(path: Path, name: str, password: str) -> User | None:
    entry = load_users(path).get(name.strip())
    if entry is None:
        # Same work as a real check, so a wrong name and a wrong password take as long.
        check_password(password, _DUMMY)
        return None
    if not check_password(password, entry["hash"]):
        return None
    role: Role = "admin" if entry["role"] == "admin" else "viewer"
    return User(name.strip(), role)


def set_user(path: Path, name: str, role: Role, password: str) -> None:
    """Add or replace a user (written atomically, readable by the owner only)."""
    name = name.strip()
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError("a user name is 1-64 letters, digits, '-', '_' or '.'")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    users = load_users(path)
    users[name] = {"role": role, "hash": hash_password(password)}
    _write(path, users)


def remove_user(path: Path, name: str) -> bool:
    users = load_users(path)
    if users.pop(name, None) is None:
        return False
    _write(path, users)
    return True


def _write(path: Path, users: dict[str, dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(users, fh, indent=2, sort_keys=True)
    tmp.replace(path)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


_DUMMY = f"scrypt${N}${R}${P}${_b64(b'0' * 16)}${_b64(b'0' * 32)}"
