"""Run the agent of one host: a Celery worker consuming only the queue host.<slug>."""

from __future__ import annotations

import os
import re
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Start the agent (Celery worker) for a managed host."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=settings.CONSOLE_LOCAL_HOST_SLUG, help="host slug")
        parser.add_argument("--lxc-path", default=settings.CONSOLE_DEFAULT_LXC_PATH)
        parser.add_argument("--concurrency", type=int, default=4)
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args, host: str, lxc_path: str, concurrency: int, loglevel: str, **options) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", host):
            raise CommandError("the host slug must be lowercase letters, digits and '-'")
        if not lxc_path.startswith("/"):
            raise CommandError("--lxc-path must be absolute")
        env = {**os.environ, "CONSOLE_AGENT_HOST": host, "CONSOLE_LXC_PATH": lxc_path}
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "console",
            "worker",
            "-Q",
            f"host.{host}",
            "--hostname",
            f"agent-{host}@%h",
            "--pool",
            "threads",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            loglevel,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        os.execve(sys.executable, argv, env)
