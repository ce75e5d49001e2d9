"""Manage the dashboard's users: passwords are stored as scrypt hashes, never in clear.

  python scripts/dashboard_users.py add NAME --role admin|viewer   (asks for the password twice)
  python scripts/dashboard_users.py add NAME --role viewer --password-stdin
  python scripts/dashboard_users.py add NAME --role admin --generate   (prints a new random password once)
  python scripts/dashboard_users.py remove NAME
  python scripts/dashboard_users.py list

The file is FACEREG_DASHBOARD_USERS_FILE (default <FACEREG_DATA_DIR>/dashboard_users.json), mode 0600.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys

from dashboard.auth import ROLES, UsersFileError, load_users, remove_user, set_user
from services.cli import run
from services.config import get_settings


def _password(args: argparse.Namespace) -> str:
    if args.generate:
        return secrets.token_urlsafe(12)
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise SystemExit("error: the passwords differ")
    return first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a user or replace their password and role")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    how = add.add_mutually_exclusive_group()
    how.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    how.add_argument("--generate", action="store_true", help="generate a password and print it once")
    add.add_argument("--if-missing", action="store_true", help="do nothing when the user exists")
    sub.add_parser("list", help="user names and roles")
    rm = sub.add_parser("remove", help="remove a user")
    rm.add_argument("name")
    args = parser.parse_args()
    path = get_settings().users_file
    try:
        if args.command == "list":
            for name, entry in sorted(load_users(path).items()):
                print(f"{name}\t{entry['role']}")
        elif args.command == "remove":
            if not remove_user(path, args.name):
                print(f"error: no user {args.name!r} in {path}", file=sys.stderr)
                return 1
        elif args.if_missing and args.name in load_users(path):
            print(f"{args.name} already exists in {path}")
        else:
            password = _password(args)
            set_user(path, args.name, args.role, password)
            shown = f" with password {password}" if args.generate else ""
            print(f"{args.name} ({args.role}) saved in {path}{shown}")
    except (UsersFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    run(main)
