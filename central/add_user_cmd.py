"""`python -m central add-user NAME --role viewer|admin --db DB [--password-file FILE]`: create a
fleet dashboard log-in in the central database, or replace its role and password.

The password is asked for twice on the terminal (not echoed), or read from the first line of
`--password-file` (for automation; keep that file mode 0600 and delete it after). It is stored
only as a scrypt hash (central.users).
"""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

import structlog

from central.db_access import central
from central.users import ROLES, UserError, add_user, check_name, check_password

log = structlog.get_logger(__name__)
MAX_PASSWORD_FILE = 4096


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the log-in name (1-64 letters, digits, '.', '_', '-')")
    parser.add_argument("--role", required=True, choices=ROLES,
                        help="viewer: charts and tables; admin: also refreshes the roll-ups")
    parser.add_argument("--db", required=True,
                        help="the central database: a SQLite file or postgresql://...")
    parser.add_argument("--password-file", type=Path,
                        help="read the password from this file's first line instead of asking")


def _read_password(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        path: Path = args.password_file
        try:
            if not path.is_file() or path.stat().st_size > MAX_PASSWORD_FILE:
                raise UserError(f"--password-file {path}: give a file of at most "
                                f"{MAX_PASSWORD_FILE} bytes holding the password")
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"--password-file {path}: cannot read it ({type(exc).__name__}); "
                            "give a readable UTF-8 text file") from None
        return check_password(text.splitlines()[0] if text else "")
    first = check_password(getpass.getpass(f"password for {args.name}: "))
    if getpass.getpass("again: ") != first:
        raise UserError("the two passwords differ: run add-user again")
    return first


def run(args: argparse.Namespace) -> int:
    check_name(args.name)
    password = _read_password(args)
    with central(args.db, prepare=True) as db:
        new = add_user(db, args.name, args.role, password)
    log.info("central_user_added" if new else "central_user_updated", user=args.name,
             role=args.role)
    print(f"{'added' if new else 'updated'} {args.name} ({args.role})")
    return 0
