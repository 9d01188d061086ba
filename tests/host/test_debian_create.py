"""Debian via debootstrap: a long operation with progress, cached per release (slow, runs in CI)."""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest

from console.models import Host, Operation
from console.operations import RequestContext
from containers import services
from containers.models import Container
from tests.host.helpers import wait_terminal
from tests.hosttools import require_tool

pytestmark = [pytest.mark.host, pytest.mark.slow]
CTX = RequestContext()


def test_debian_container_from_debootstrap_then_from_cache(admin, start_agent, settings, tmp_path_factory):
    require_tool("debootstrap", "rsync")
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    name = f"deb-{uuid.uuid4().hex[:6]}"

    op = services.create_container(actor=admin, ctx=CTX, host=host, name=name, template="debian")
    seen_progress = set()
    while not op.is_terminal:
        op.refresh_from_db()
        seen_progress.add(op.progress)
        import time

        time.sleep(0.5)
    assert op.status == "succeeded", op.error + op.log[-3000:]
    assert "$ debootstrap --variant=minbase" in op.log or "using the cached root filesystem" in op.log
    if op.result.get("cache_built"):
        assert "I: Retrieving" in op.log and "I: Configuring" in op.log
        # Progress rose through several values while debootstrap ran.
        assert len([p for p in seen_progress if 0 < p < 100]) >= 3
    container = Container.objects.get(name=name)
    rootfs = f"{agent.lxc_path}/{name}/rootfs"
    assert open(f"{rootfs}/etc/debian_version").read().strip()
    assert open(f"{rootfs}/etc/hostname").read().strip() == name

    run = wait_terminal(services.start_container(actor=admin, ctx=CTX, container=container), 120)
    assert run.status == "succeeded", run.error + run.log
    out = subprocess.run(
        ["lxc-attach", "-P", agent.lxc_path, "-n", name, "--", "cat", "/etc/os-release"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "Debian" in out

    # The second create of the same release copies the cache: no debootstrap run.
    second = f"deb2-{uuid.uuid4().hex[:6]}"
    op2 = wait_terminal(
        services.create_container(actor=admin, ctx=CTX, host=host, name=second, template="debian"), 300
    )
    assert op2.status == "succeeded", op2.error + op2.log
    assert not any(c["argv"][0] == "debootstrap" for c in op2.commands)
    assert "using the cached root filesystem" in op2.log
    assert op2.duration < op.duration or not op.result.get("cache_built")


def test_unreachable_mirror_fails_with_debootstraps_words_and_leaves_nothing(admin, start_agent, settings):
    require_tool("debootstrap")
    agent = start_agent()
    # A mirror on a loopback port where nothing listens: debootstrap fails at once, on this machine.
    agent.stop()
    import os

    os.environ["DEBIAN_MIRROR"] = "http://127.0.0.1:9/debian"
    os.environ["DEBIAN_CACHE_DIR"] = f"/var/tmp/console-test-debcache-{uuid.uuid4().hex[:6]}"
    try:
        agent = start_agent(slug=agent.slug, lxc_path=agent.lxc_path)
    finally:
        del os.environ["DEBIAN_MIRROR"]
        cache = os.environ.pop("DEBIAN_CACHE_DIR")
    host = Host.objects.get(slug=agent.slug)
    name = f"nomirror-{uuid.uuid4().hex[:4]}"
    op = wait_terminal(
        services.create_container(
            actor=admin, ctx=CTX, host=host, name=name, template="debian", release="bookworm"
        ),
        300,
    )
    assert op.status == "failed"
    assert op.error.startswith("debootstrap failed:")
    assert "127.0.0.1:9" in op.log or "Failed getting release file" in op.log or "E:" in op.log
    assert not os.path.exists(f"{agent.lxc_path}/{name}")
    assert not os.path.exists(f"{cache}/partial-bookworm-amd64")
    assert not Container.objects.filter(name=name).exists()
    shutil.rmtree(cache, ignore_errors=True)
    assert Operation.objects.filter(kind="container.create", status="failed").count() == 1
