"""Give a host's agent its own PostgreSQL role (console.db_roles), or take it away."""

from __future__ import annotations

import secrets

from django.core.management.base import BaseCommand, CommandError

from console import db_roles
from console.models import Host


class Command(BaseCommand):
    help = (
        "Create (or reset the password of) the PostgreSQL role of a host's agent and print the "
        "DATABASE_URL it connects with; --revoke: logins refused and its connections ended; "
        "--drop: remove it. --setup-only: (re)apply the agents' privileges and policies (after an "
        "upgrade added tables)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("host", nargs="?", help="host slug")
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--revoke", action="store_true")
        group.add_argument("--drop", action="store_true")
        group.add_argument("--setup-only", action="store_true")

    def handle(self, *args, host: str | None, revoke: bool, drop: bool, setup_only: bool, **options) -> None:
        if not db_roles.is_postgres():
            raise CommandError("agent roles are for PostgreSQL; on SQLite (one machine) there are none")
        if setup_only:
            db_roles.setup()
            self.stdout.write("agent privileges and policies applied")
            return
        if not host:
            raise CommandError("name the host (its slug)")
        row = Host.objects.filter(slug=host).first()
        if row is None:
            raise CommandError(f"no host '{host}'")
        if revoke:
            ended = db_roles.revoke(row.pk)
            self.stdout.write(f"{db_roles.role_name(row.pk)}: logins refused, {ended} connection(s) ended")
        elif drop:
            db_roles.drop(row.pk)
            self.stdout.write(f"{db_roles.role_name(row.pk)} removed")
        else:
            password = secrets.token_urlsafe(32)
            role = db_roles.create_or_reset(row.pk, password)
            self.stdout.write(db_roles.database_url(role, password))
