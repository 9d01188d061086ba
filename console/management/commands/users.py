"""Manage console users from scripts: the Users pages' actions, audited as done by "system".

    manage.py users list [--search TEXT] [--status active|inactive] [--json]
    manage.py users create NAME [--email E] [--team T ...] [--password-stdin]
    manage.py users invite NAME [--email E] [--team T ...]
    manage.py users deactivate NAME
    manage.py users reactivate NAME
    manage.py users reset-password NAME
    manage.py users remove-2fa NAME

``create`` without ``--password-stdin`` invites (prints a one-time link), like ``invite``.
A password is read from standard input only, never from the command line (``ps`` shows it).
Links are printed with ``--base-url`` (default ``CONSOLE_BASE_URL``).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q
from django_otp.plugins.otp_totp.models import TOTPDevice

from console import user_services
from console.errors import ServiceError
from console.operations import SYSTEM


class Command(BaseCommand):
    help = "Create, invite, deactivate, reactivate and list users; reset passwords; remove two-factor."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url", default=settings.CONSOLE_BASE_URL, help="the console's URL, for links"
        )
        sub = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
        listing = sub.add_parser("list", help="list users")
        listing.add_argument("--search", default="", help="part of a user name or e-mail address")
        listing.add_argument(
            "--status", choices=["active", "inactive"], help="only active or deactivated users"
        )
        listing.add_argument("--json", action="store_true", help="one JSON document instead of a table")
        for name, what in (
            ("create", "create a user"),
            ("invite", "create a user and print an invitation link"),
        ):
            # No abbreviations: "--password SECRET" must not pass for --password-stdin.
            p = sub.add_parser(name, help=what, allow_abbrev=False)
            p.add_argument("username")
            p.add_argument("--email", default="")
            p.add_argument("--team", action="append", default=[], help="a team to join (repeatable)")
            if name == "create":
                p.add_argument(
                    "--password-stdin", action="store_true", help="read the password from standard input"
                )
        for name, what in (
            ("deactivate", "deactivate a user and end their sessions"),
            ("reactivate", "reactivate a deactivated user"),
            ("reset-password", "disable the password, end the sessions and print a one-time link"),
            ("remove-2fa", "remove the user's two-factor devices"),
        ):
            sub.add_parser(name, help=what).add_argument("username")

    def handle(self, *args: Any, action: str, base_url: str, **options: Any) -> None:
        try:
            if action == "list":
                self._list(options["search"], options["status"], options["json"])
            elif action in ("create", "invite"):
                password = None
                if options.get("password_stdin"):
                    password = sys.stdin.readline().rstrip("\n")
                user, issued = user_services.create_user(
                    actor=None,
                    ctx=SYSTEM,
                    username=options["username"],
                    email=options["email"],
                    password=password,
                    teams=options["team"],
                )
                self.stdout.write(f"created user {user.username}")
                if issued is not None:
                    self._print_link(issued, base_url)
            else:
                user = user_services.find_user(options["username"])
                if action == "deactivate":
                    n = user_services.deactivate_user(actor=None, ctx=SYSTEM, user=user)
                    self.stdout.write(f"deactivated {user.username} ({n} session(s) ended)")
                elif action == "reactivate":
                    user_services.reactivate_user(actor=None, ctx=SYSTEM, user=user)
                    self.stdout.write(f"reactivated {user.username}")
                elif action == "reset-password":
                    issued = user_services.reset_password(actor=None, ctx=SYSTEM, user=user)
                    self.stdout.write(f"password of {user.username} disabled; their sessions ended")
                    self._print_link(issued, base_url)
                elif action == "remove-2fa":
                    n = user_services.remove_two_factor(actor=None, ctx=SYSTEM, user=user)
                    self.stdout.write(f"removed {n} two-factor device(s) of {user.username}")
        except ServiceError as exc:
            raise CommandError(exc.message)

    def _print_link(self, issued: user_services.IssuedLink, base_url: str) -> None:
        self.stdout.write(f"one-time link (until {issued.link.expires_at:%Y-%m-%d %H:%M %Z}):")
        self.stdout.write(base_url.rstrip("/") + issued.path)

    def _list(self, search: str, status: str | None, as_json: bool) -> None:
        users = get_user_model().objects.order_by("username").prefetch_related("console_teams")
        if search:
            users = users.filter(Q(username__icontains=search) | Q(email__icontains=search))
        if status:
            users = users.filter(is_active=status == "active")
        with_2fa = set(TOTPDevice.objects.filter(confirmed=True).values_list("user_id", flat=True))
        rows: list[dict[str, Any]] = [
            {
                "username": u.username,
                "email": u.email,
                "active": u.is_active,
                "superuser": u.is_superuser,
                "two_factor": u.pk in with_2fa,
                "teams": sorted(t.name for t in u.console_teams.all()),
                "last_login": u.last_login.isoformat() if u.last_login else None,
            }
            for u in users
        ]
        if as_json:
            self.stdout.write(json.dumps({"users": rows}, indent=2))
            return
        self.stdout.write(f"{'USER':24} {'ACTIVE':6} {'SUPER':5} {'2FA':3} {'LAST LOGIN':20} TEAMS")
        for r in rows:
            self.stdout.write(
                f"{r['username']:24} {'yes' if r['active'] else 'no':6} {'yes' if r['superuser'] else '':5} "
                f"{'on' if r['two_factor'] else '':3} {(r['last_login'] or 'never')[:19]:20} "
                f"{','.join(r['teams'])}"
            )
