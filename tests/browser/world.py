"""One world per test module: a real agent on an LXC path of its own, the console's ASGI server
(uvicorn), a scratch storage directory and users of each role, shared by the module's tests.

The module's tests must not ask for ``db``/``transactional_db``/``live_server`` (their flush
would wipe the world between tests): the world holds the database open for the whole module and
flushes it at the end, as a transactional test does. Everything the world and its tests make on
the host carries the world's prefix or lies under its scratch directory, and is taken apart at
the end, whatever failed: containers, pools' mounts, loop devices, libvirt domains and networks.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.browser.helpers import PASSWORD, virsh
from tests.database import session_database_url
from tests.host.conftest import ROOT, Agent, destroy_all_containers
from tests.hosttools import free_port, require_root, require_tool, stop_process, wait_for

ROLES = {"admin": "admin", "operator": "operate", "viewer": "view"}


@dataclass
class World:
    base: str  # the console's URL
    prefix: str  # every name made on the host starts with it
    root: Path  # scratch directory: LXC path, images, pools, bind-mount sources
    lxc_path: str
    agent: Agent
    host: object  # console.models.Host
    users: dict[str, object] = field(default_factory=dict)  # role -> user; "admin" is also superuser

    def name(self, what: str) -> str:
        return f"{self.prefix}-{what}"

    def username(self, role: str) -> str:
        return f"{self.prefix}-{role}"


def _uvicorn(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "console.asgi:application"]
        + ["--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def listening():
        if proc.poll() is not None:
            raise AssertionError(f"uvicorn exited:\n{log_path.read_text()[-3000:]}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, 20, what="uvicorn")
    return proc, f"http://127.0.0.1:{port}"


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120)


def take_apart(world_root: Path, prefix: str, lxc_paths: list[str]) -> list[str]:
    """Undo what a world made, in the safe order; returns what could not be undone."""
    left: list[str] = []
    for kind, listing, stop, remove in (
        ("domain", ("list", "--all", "--name"), "destroy", "undefine"),
        ("network", ("net-list", "--all", "--name"), "net-destroy", "net-undefine"),
    ):
        for name in virsh(*listing).stdout.split():
            if name.startswith(prefix):
                virsh(stop, name)
                if virsh(remove, name).returncode != 0:
                    left.append(f"{kind} {name}")
    mounts = []
    with open("/proc/self/mounts") as fh:
        for line in fh:
            target = line.split()[1].replace("\\040", " ")
            if target.startswith(f"{world_root}/"):
                mounts.append(target)
    for path in [*lxc_paths, *sorted(mounts, key=len, reverse=True)]:
        if os.path.isdir(path):
            destroy_all_containers(path)
    for target in sorted(mounts, key=len, reverse=True):
        if _run("umount", target).returncode != 0 and _run("umount", "-l", target).returncode != 0:
            left.append(f"mount {target}")
    loops = json.loads(_run("losetup", "--list", "--json").stdout or "{}").get("loopdevices", [])
    for d in loops:
        if (d.get("back-file") or "").startswith(f"{world_root}/"):
            if _run("losetup", "-d", d["name"]).returncode != 0:
                left.append(f"loop {d['name']}")
    shutil.rmtree(world_root, ignore_errors=True)
    return left


@pytest.fixture(scope="module")
def world(request, browser, redis_url, agent_log_dir, django_db_setup, django_db_blocker):
    require_root()
    require_tool("lxc-create", "lxc-info", "virsh", "losetup", "truncate", "mkfs.btrfs", "btrfs")
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from console.models import RoleBinding, Team

    prefix = f"w{uuid.uuid4().hex[:5]}"
    root = Path(tempfile.mkdtemp(prefix=f"console-test-{prefix}-", dir="/var/tmp"))
    lxc_path = root / "lxc"
    for sub in ("lxc", "images", "pools", "agent-state", "tarballs", "shared"):
        (root / sub).mkdir()
    env_changes = {
        "STORAGE_IMAGE_DIR": str(root / "images"),
        "STORAGE_POOL_DIR": str(root / "pools"),
    }
    mp = pytest.MonkeyPatch()
    for k, v in env_changes.items():
        mp.setenv(k, v)  # the agent and uvicorn inherit them; this process reads them too
    agent = proc = None
    with django_db_blocker.unblock(), _test_database():
        try:
            users = {}
            for role, grant in ROLES.items():
                user = get_user_model().objects.create_user(
                    username=f"{prefix}-{role}", password=PASSWORD, is_superuser=role == "admin"
                )
                team = Team.objects.create(name=f"{prefix}-{role}s")
                team.members.add(user)
                RoleBinding.objects.create(team=team, role=grant, all_hosts=True)
                users[role] = user
            agent = Agent(
                f"{prefix}-host",
                str(lxc_path),
                redis_url,
                agent_log_dir,
                {
                    "ROOTFS_TARBALL_DIRS": str(root / "tarballs"),
                    "AGENT_STATE_DIR": str(root / "agent-state"),
                    "AGENT_CLAIM_SECONDS": "1",
                },
            )
            host = agent.wait_registered()
            web_env = {
                **os.environ,
                "DATABASE_URL": session_database_url(),
                "REDIS_URL": redis_url,
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
            }
            web_env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
            proc, base = _uvicorn(web_env, agent_log_dir / f"uvicorn-{prefix}.log")
            yield World(
                base=base,
                prefix=prefix,
                root=root,
                lxc_path=str(lxc_path),
                agent=agent,
                host=host,
                users=users,
            )
        finally:
            if proc is not None:
                stop_process(proc)
            if agent is not None:
                agent.stop()
            lxc_paths = [str(lxc_path)]
            left = take_apart(root, prefix, lxc_paths)
            mp.undo()
            call_command("flush", interactive=False, verbosity=0)
            assert not left, f"left on the host: {left}"


@contextlib.contextmanager
def _test_database():
    """pytest-django makes the test database only when some test of the run asks for ``db``: a run
    of world tests alone makes it here (and removes it after)."""
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    if connection.settings_dict["NAME"] == connection.creation._get_test_db_name():
        yield
        return
    config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        yield
    finally:
        teardown_databases(config, verbosity=0)


def login_as(world: World, browser, role: str):
    """A new browser context logged in as the world's user of ``role``; returns its page."""
    from tests.browser.helpers import login

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    login(page, world.base, world.username(role))
    return page
