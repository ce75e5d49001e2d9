"""Manage the dashboard's users: passwords are stored as scrypt hashes, never in clear.

  python scripts/dashboard_users.py add NAME --role admin|viewer   (asks for the password twice)
  python scripts/dashboard_users.py add NAME --role viewer --password-stdin
  python scripts/dashboard_users.py add NAME --role admin --generate   (prints a new random password once)
  python scripts/dashboard_users.py add NAME --role viewer --replace   (new password and role for a user)
  python scripts/dashboard_users.py remove NAME
  python scripts/dashboard_users.py list     (with sign-in locks, read from MongoDB)
  python scripts/dashboard_users.py unlock NAME   (lift a sign-in lock after too many wrong passwords)

Names are lower-cased and limited to a-z 0-9 . _ - (so "ADMIN" is "admin"). The last administrator can be
neither removed nor demoted. The file is FACEREG_DASHBOARD_USERS_FILE (default
<FACEREG_DATA_DIR>/dashboard_users.json), mode 0600; edits are serialised by a lock on <file>.lock.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from dashboard.auth import ROLES, UserExistsError, UsersFileError, load_users, normalize_name, remove_user, set_user
from scripts.cli import parser, run
from services.config import get_settings
from services.errors import StorageUnavailable
from services.storage.audit import record
from services.storage.db import connect
from services.storage.records import utcnow
from services.storage.signin_throttle import Lock, SigninThrottle

# One function per subcommand: (users file, parsed arguments) -> exit code.
Handler = Callable[[Path, argparse.Namespace], int]
EXIT_REFUSED = 2


def read_password_stdin() -> str:
    """The first line of stdin without its line ending (`\\r\\n`, `\\n` or `\\r`); nothing else is stripped."""
    line = sys.stdin.readline()
    if line.endswith("\r\n"):
        return line[:-2]
    if line.endswith(("\n", "\r")):
        return line[:-1]
    return line


def _password(args: argparse.Namespace) -> str:
    if args.generate:
        return secrets.token_urlsafe(12)
    if args.password_stdin:
        return read_password_stdin()
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise ValueError("the passwords differ")
    return first


def cmd_add(path: Path, args: argparse.Namespace) -> int:
    name = normalize_name(args.name)
    if name in load_users(path) and not args.replace:  # checked again under the lock by set_user
        if args.if_missing:
            print(f"{name} already exists in {path}")
            return 0
        print(f"error: user {name!r} already exists in {path}; add --replace to change it", file=sys.stderr)
        return EXIT_REFUSED
    password = _password(args)
    try:
        set_user(path, name, args.role, password, replace=args.replace)
    except UserExistsError:
        if not args.if_missing:
            raise
        print(f"{name} already exists in {path}")  # added by someone else meanwhile
        return 0
    shown = f" with password {password}" if args.generate else ""
    print(f"{name} ({args.role}) saved in {path}{shown}")
    return 0


def cmd_remove(path: Path, args: argparse.Namespace) -> int:
    name = normalize_name(args.name)
    if not remove_user(path, name):
        print(f"error: no user {name!r} in {path}", file=sys.stderr)
        return 1
    print(f"{name} removed from {path}")
    return 0


def _throttle() -> SigninThrottle:
    """The dashboard's sign-in throttle, in the MongoDB of FACEREG_MONGO_URI."""
    return SigninThrottle(connect(get_settings().mongo_uri, timeout_ms=1500))


def _until(lock: Lock) -> str:
    return f"locked until {lock.until.astimezone(get_settings().tz):%Y-%m-%d %H:%M:%S %Z}"


def cmd_list(path: Path, args: argparse.Namespace) -> int:
    users = sorted(load_users(path).items())
    try:
        locks = {lock.key: lock for lock in _throttle().current_locks(utcnow())}
    except StorageUnavailable as exc:
        locks = {}
        print(f"warning: sign-in locks are not shown: {exc}", file=sys.stderr)
    for name, entry in users:
        lock = locks.pop(f"user:{name}", None)
        print(f"{name}\t{entry['role']}" + (f"\t{_until(lock)}" if lock else ""))
    for lock in locks.values():  # addresses, and names that are not users
        print(f"{lock.key}\t-\t{_until(lock)}")
    return 0


def cmd_unlock(path: Path, args: argparse.Namespace) -> int:
    name = normalize_name(args.name)
    throttle = _throttle()
    if not throttle.unlock(name):
        print(f"{name} is not locked")
        return 0
    record(throttle.locks.database["audit"], "cli:dashboard_users", "signin_unlocked", f"user:{name}")
    print(f"{name} unlocked")
    return 0


def build_parser() -> argparse.ArgumentParser:
    cli = parser(__doc__)
    sub = cli.add_subparsers(dest="command", required=True)

    add = sub.add_parser("add", help="add a user (or, with --replace, change their password and role)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    how = add.add_mutually_exclusive_group()
    how.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    how.add_argument("--generate", action="store_true", help="generate a password and print it once")
    exists = add.add_mutually_exclusive_group()
    exists.add_argument("--if-missing", action="store_true", help="do nothing when the user exists")
    exists.add_argument("--replace", action="store_true", help="replace an existing user's password and role")
    add.set_defaults(handler=cmd_add)

    rm = sub.add_parser("remove", help="remove a user (never the last administrator)")
    rm.add_argument("name")
    rm.set_defaults(handler=cmd_remove)

    sub.add_parser("list", help="user names, roles and sign-in locks").set_defaults(handler=cmd_list)

    unlock = sub.add_parser("unlock", help="lift a user name's sign-in lock")
    unlock.add_argument("name")
    unlock.set_defaults(handler=cmd_unlock)
    return cli


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    path = get_settings().users_file
    try:
        return handler(path, args)
    except (UsersFileError, ValueError) as exc:  # includes bad names, existing users, the last admin
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED


if __name__ == "__main__":
    run(main)
