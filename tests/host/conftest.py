"""Host-test fixtures: a private Redis, real agents (Celery workers) and a private LXC path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from console.celery import app as celery_app
from console.models import Host
from tests.database import session_database_url
from tests.hosttools import free_port, require_root, require_tool, stop_process, wait_for

ROOT = Path(settings.BASE_DIR)


@pytest.fixture(scope="session")
def redis_url():
    """A Redis server of the test session's own, on loopback; ended by its PID."""
    require_tool("redis-server")
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    client = redis.Redis.from_url(url)
    wait_for(lambda: _ping(client), 10, what="redis-server")
    # The web side of the tests (this process) publishes to this Redis.
    old = celery_app.conf.broker_url
    celery_app.conf.broker_url = url
    _reset_producer_pool()
    yield url
    celery_app.conf.broker_url = old
    _reset_producer_pool()
    stop_process(proc)


def _ping(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


def _reset_producer_pool() -> None:
    """Forget cached broker connections after the broker URL changed (kombu keeps global pools)."""
    import kombu.pools

    kombu.pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture(scope="session")
def lxc_root():
    """A directory for test LXC paths; every container made under it is destroyed at the end."""
    require_root()
    require_tool("lxc-create", "lxc-start", "lxc-stop", "lxc-destroy", "lxc-info", "lxc-ls")
    root = Path(tempfile.mkdtemp(prefix="console-test-lxc-", dir="/var/tmp"))
    yield root
    for path in [root, *[p for p in root.iterdir() if p.is_dir()]]:
        destroy_all_containers(str(path))
    shutil.rmtree(root, ignore_errors=True)


def destroy_all_containers(lxc_path: str) -> None:
    for cfg in Path(lxc_path).glob("*/config"):
        name = cfg.parent.name
        subprocess.run(["lxc-stop", "-P", lxc_path, "-n", name, "-k"], capture_output=True, timeout=60)
        subprocess.run(["lxc-destroy", "-P", lxc_path, "-n", name, "-f"], capture_output=True, timeout=60)


class Agent:
    """A real agent process (Celery worker) for one host slug and LXC path."""

    def __init__(
        self, slug: str, lxc_path: str, redis_url: str, log_dir: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.slug = slug
        self.lxc_path = lxc_path
        self.log_path = log_dir / f"agent-{slug}.log"
        env = {
            **os.environ,
            "DATABASE_URL": session_database_url(),
            "REDIS_URL": redis_url,
            "AGENT_HEARTBEAT_SECONDS": "1",
            # A test that must see what an operation itself refreshes sets a long period.
            "INVENTORY_SYNC_SECONDS": os.environ.get("TEST_INVENTORY_SYNC_SECONDS", "2"),
            "CONSOLE_AGENT_NAME": f"agent-{slug}",
            # Boot autostart only where a test asks for it.
            "AUTOSTART_BOOT_WINDOW_SECONDS": os.environ.get("TEST_AUTOSTART_BOOT_WINDOW", "0"),
            **(extra_env or {}),
        }
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "agent",
                "--host",
                slug,
                "--lxc-path",
                lxc_path,
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_registered(self, timeout: float = 30) -> Host:
        def registered():
            if self.proc.poll() is not None:
                raise AssertionError(f"agent {self.slug} exited:\n{self.log_path.read_text()[-3000:]}")
            return Host.objects.filter(slug=self.slug, capabilities__has_key="lxc").first()

        return wait_for(registered, timeout, interval=0.2, what=f"agent {self.slug} to register")

    def stop(self) -> None:
        stop_process(self.proc, timeout=20)
        self.log.close()


@pytest.fixture(scope="session")
def agent_log_dir():
    path = ROOT / "var" / "test-logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def start_agent(transactional_db, redis_url, lxc_root, agent_log_dir, tmp_path):
    """Start agents for the test; each is stopped (by PID) at the end of the test.

    The agent checks tarball paths against its own settings, so it allows the test's
    ``tmp_path / "images"``, where tests that create from a tarball put theirs."""
    agents: list[Agent] = []

    def start(slug: str | None = None, lxc_path: str | None = None) -> Agent:
        slug = slug or f"t-{uuid.uuid4().hex[:8]}"
        path = lxc_path or str(lxc_root / slug)
        os.makedirs(path, exist_ok=True)
        agent = Agent(slug, path, redis_url, agent_log_dir, {"ROOTFS_TARBALL_DIRS": str(tmp_path / "images")})
        agents.append(agent)
        agent.wait_registered()
        return agent

    yield start
    for agent in agents:
        agent.stop()
        destroy_all_containers(agent.lxc_path)


@pytest.fixture
def local_agent(start_agent) -> Agent:
    return start_agent()


@pytest.fixture
def web(redis_url, transactional_db, agent_log_dir):
    """The console's ASGI server (uvicorn) on a free loopback port, on the test database."""
    port = free_port()
    log = open(agent_log_dir / "uvicorn.log", "w")
    env = {
        **os.environ,
        "DATABASE_URL": session_database_url(),
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "console.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    import socket

    def listening():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, 20, what="uvicorn")
    yield f"127.0.0.1:{port}"
    stop_process(proc)
    log.close()
