"""Host-test fixtures: a private Redis, real agents (Celery workers) and a private LXC path."""

from __future__ import annotations

import os
import secrets
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


class RedisServer:
    """A redis-server of the tests' own on loopback, persisting as the console's does (an
    append-only file fsynced every second), that a test may kill (SIGKILL) and start again."""

    def __init__(self, directory: Path, aclfile: Path | None = None, password: str = "") -> None:
        """``aclfile``: Redis ACLs from that file; ``password``: the default user's (the admin's
        URL, ``self.url``, carries it)."""
        require_tool("redis-server")
        self.port = free_port()
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.aclfile = aclfile
        auth = f"default:{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.start()

    def url_for(self, user: str, password: str) -> str:
        return f"redis://{user}:{password}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--dir",
                str(self.directory),
                *(["--aclfile", str(self.aclfile)] if self.aclfile else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        self.client = redis.Redis.from_url(self.url)
        wait_for(lambda: _ping(self.client), 10, what="redis-server")

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is flushed."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc)


def use_broker(url: str) -> str:
    """Point the web side of the tests (this process) at ``url``; returns the previous URL."""
    old = celery_app.conf.broker_url
    celery_app.conf.broker_url = url  # type: ignore[misc]  # the stubs' read-only property is a setting
    _reset_producer_pool()
    return old


@pytest.fixture(scope="session")
def redis_server():
    """A Redis server of the test session's own, on loopback; ended by its PID. A test that kills
    it must start it again (same port, append-only file and ACL file: users that enrolment made
    come back, as on a console's Redis)."""
    directory = Path(tempfile.mkdtemp(prefix="console-test-redis-", dir="/var/tmp"))
    aclfile = directory / "users.acl"
    aclfile.write_text("user default on nopass ~* &* +@all\n")
    server = RedisServer(directory, aclfile=aclfile)
    old = use_broker(server.url)
    yield server
    use_broker(old)
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(redis_server):
    return redis_server.url


def _ping(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


def _reset_producer_pool() -> None:
    """Forget cached broker connections after the broker URL changed (kombu keeps global pools)."""
    import kombu.pools

    kombu.pools.reset()
    # Celery's and kombu's private pools: forgotten so the next message opens a new connection.
    celery_app._pool = None  # type: ignore[attr-defined]
    celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]


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

    def kill(self) -> None:
        """SIGKILL, as a crash: the agent cleans nothing up (its operations' commands run on)."""
        self.proc.kill()
        self.proc.wait(timeout=10)

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

    def start(
        slug: str | None = None,
        lxc_path: str | None = None,
        broker: str | None = None,
        wait: bool = True,
        env: dict[str, str] | None = None,
    ) -> Agent:
        """``env``: more of the agent's environment (its own DATABASE_URL, for one)."""
        slug = slug or f"t-{uuid.uuid4().hex[:8]}"
        path = lxc_path or str(lxc_root / slug)
        os.makedirs(path, exist_ok=True)
        env = {
            "ROOTFS_TARBALL_DIRS": str(tmp_path / "images"),
            "AGENT_STATE_DIR": str(tmp_path / "agent-state"),
            "AGENT_CLAIM_SECONDS": os.environ.get("TEST_AGENT_CLAIM_SECONDS", "1"),
            **(env or {}),
        }
        agent = Agent(slug, path, broker or redis_url, agent_log_dir, env)
        agents.append(agent)
        if wait:
            agent.wait_registered()
        return agent

    yield start
    for agent in agents:
        agent.stop()
        destroy_all_containers(agent.lxc_path)


@pytest.fixture
def local_agent(start_agent) -> Agent:
    return start_agent()


class Web:
    """The console's ASGI server (uvicorn) on a free loopback port, on the test database."""

    def __init__(self, redis_url: str, log_dir: Path) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = open(log_dir / "uvicorn.log", "w")
        env = {
            **os.environ,
            "DATABASE_URL": session_database_url(),
            "REDIS_URL": redis_url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
        }
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "console.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        import socket

        def listening():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(listening, 20, what="uvicorn")

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


@pytest.fixture
def web(redis_url, transactional_db, agent_log_dir):
    """The console's ASGI server on the session's Redis: its address (host:port)."""
    server = Web(redis_url, agent_log_dir)
    yield server.address
    server.stop()


@pytest.fixture
def acl_redis():
    """A Redis with an ACL file: the default user (the web side's) has a password."""
    directory = Path(tempfile.mkdtemp(prefix="console-test-acl-", dir="/var/tmp"))
    aclfile = directory / "users.acl"
    admin_password = secrets.token_urlsafe(24)
    aclfile.write_text(f"user default on >{admin_password} ~* &* +@all\n")
    server = RedisServer(directory, aclfile=aclfile, password=admin_password)
    old = use_broker(server.url)
    yield server
    use_broker(old)
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)
