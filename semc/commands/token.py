"""``semc token``: create, list and revoke API tokens.

Examples::

    semc token create jdoe --label "facility dashboard"   # prints the token once; only its digest is kept
    semc token create ops --staff                          # a staff token may act for any user
    semc token list [jdoe]
    semc token revoke 3f2a9c1b                             # by the prefix `list` shows
    semc token revoke --user jdoe                          # every token of a user
"""

from __future__ import annotations

import argparse
import sys

from semc.cli import django_setup


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a token for USER and print it (once)")
    create.add_argument("user", help="user name (the Leginon user name the API paths use)")
    create.add_argument("--label", default="", help="what the token is for")
    create.add_argument("--expires-days", type=float, default=None, help="expire after this many days")
    create.add_argument("--staff", action="store_true", help="the user may act for any user (facility staff)")
    listing = sub.add_parser("list", help="list tokens (prefix, user, label, created, last used, state)")
    listing.add_argument("user", nargs="?", default=None)
    revoke = sub.add_parser("revoke", help="revoke a token by its prefix, or every token of --user")
    revoke.add_argument("prefix", nargs="?", default=None)
    revoke.add_argument("--user", default=None)


def _state(row, moment) -> str:
    if row.revoked_at is not None:
        return f"revoked {row.revoked_at:%Y-%m-%d %H:%M}"
    if row.expires_at is not None and row.expires_at <= moment:
        return f"expired {row.expires_at:%Y-%m-%d %H:%M}"
    return "active" + (f" until {row.expires_at:%Y-%m-%d %H:%M}" if row.expires_at else "")


def run(args: argparse.Namespace) -> int:
    django_setup()
    import datetime as dt

    from semc.web.auth import token_create, token_list, token_revoke

    if args.action == "create":
        row, token = token_create(username=args.user, label=args.label, expires_days=args.expires_days,
                                  staff=args.staff)
        print(token)
        print(f"token {row.prefix} for {args.user}: shown once, store it now (only its digest is kept)",
              file=sys.stderr)
        return 0
    if args.action == "list":
        moment = dt.datetime.now()
        print(f"{'prefix':<10} {'user':<16} {'created':<16} {'last used':<16} {'state':<24} label")
        for row in token_list(args.user):
            used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
            print(f"{row.prefix:<10} {row.user.username:<16} {row.created_at:%Y-%m-%d %H:%M} {used:<16} "
                  f"{_state(row, moment):<24} {row.label}")
        return 0
    count = token_revoke(prefix=args.prefix, username=args.user)
    print(f"revoked {count} token{'s' if count != 1 else ''}")
    return 0 if count else 1
