"""The console under measurement, shared by the benchmarks: its own state directory, Redis on a
free loopback port, a migrated database, a superuser, one agent and a logged-in test client.

Everything it starts is ended by its own Popen handle in :meth:`ConsoleUnderTest.close`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# A benchmark run as a script has bench/ first on sys.path, where bench/click.py shadows the
# package Celery imports (django.setup() then fails): every benchmark imports this module first.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ConsoleUnderTest:
    def __init__(self, state: Path, lxc_path: Path, *, slug: str = "bench") -> None:
        self.slug = slug
        self.lxc_path = lxc_path
        port = free_port()
        self.redis: subprocess.Popen | None = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        env = {
            **os.environ,
            "CONSOLE_VAR_DIR": str(state / "var"),
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "ALLOWED_HOSTS": "testserver",
        }
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test import Client

        call_command("migrate", verbosity=0)
        user = get_user_model().objects.create_superuser(f"{slug}-user", password="bench-password-123")
        self.env = env
        self.last: dict[str, Any] = {}
        self.agent: subprocess.Popen | None = None
        self.start_agent()
        self.client = Client()
        self.client.force_login(user)

    def start_agent(self, **extra_env: str) -> subprocess.Popen:
        """Start the agent (again); its Popen is ``self.agent``."""
        self.agent = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "agent",
                "--host",
                self.slug,
                "--lxc-path",
                str(self.lxc_path),
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env={**self.env, **extra_env},
        )
        return self.agent

    def wait_for(self, predicate: Any, what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline or (self.agent is not None and self.agent.poll() is not None):
                raise SystemExit(f"timed out waiting for {what}")
            time.sleep(0.2)

    def wait_registered(self) -> None:
        from console.models import Host

        self.wait_for(
            lambda: Host.objects.filter(slug=self.slug, capabilities__has_key="lxc").exists(),
            "the agent to register",
        )

    def timed_post(self, url: str, data: dict, *, limit: float = 900) -> float:
        """Seconds from the POST until the operation it queued is terminal (it must succeed)."""
        from console.models import Operation

        before = Operation.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        wall = time.time()
        started = time.perf_counter()
        response = self.client.post(url, data)
        answered = time.perf_counter() - started
        assert response.status_code in (302, 202), response.content[:500]
        while True:
            op = Operation.objects.filter(pk__gt=before).order_by("pk").first()
            if op is not None and op.is_terminal:
                break
            if time.perf_counter() - started > limit:
                raise SystemExit(f"no terminal operation after POST {url}")
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        assert op.status == "succeeded", op.error + op.log
        # For an overhead breakdown: when the request started and was answered, when the
        # terminal row was seen (wall clock, as the row's timestamps).
        self.last = {"op": op, "request": wall, "answered": wall + answered, "seen": wall + elapsed}
        return elapsed

    def close(self) -> None:
        for name in ("agent", "redis"):
            proc = getattr(self, name)
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            setattr(self, name, None)
