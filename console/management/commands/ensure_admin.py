"""Create the first admin user with a generated password (kept in var/admin-password)."""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the admin user on first run and print its password."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default=os.environ.get("CONSOLE_ADMIN_USER", "admin"))

    def handle(self, *args, username: str, **options) -> None:
        User = get_user_model()  # noqa: N806
        path = settings.VAR_DIR / "admin-password"
        user = User.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(username=username, email="", password=password)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(password + "\n")
            self.stdout.write(f"created admin user {username!r}")
        if path.exists():
            self.stdout.write(
                f"admin user: {username}  password: {path.read_text().strip()}  (kept in {path})"
            )
        else:
            self.stdout.write(f"admin user {username!r} exists (its password was set by hand)")
