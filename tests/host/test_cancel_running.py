"""Cancelling running operations for real: a full copy, a debootstrap that waits on its mirror, a
long command in a container. The command's process group is ended, what is half made is removed as
after a failure, the lock is freed, and the operation ends "cancelled" with who cancelled it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from console.models import AuditEvent, Host, Operation
from console.operations import RequestContext
from console.recovery import group_members
from console.services import cancel_operation
from containers import services
from containers.models import Container
from tests.host.helpers import wait_terminal
from tests.host.test_crash_recovery import busybox, running_with, slow_hook
from tests.hosttools import require_tool, wait_for

pytestmark = pytest.mark.host
CTX = RequestContext()


def cancel_while_running(operator, op: Operation, program: str) -> tuple[Operation, float]:
    """Cancel ``op`` once it runs ``program``; returns the ended operation and how long it took."""
    running = running_with(op, program, timeout=60)
    assert running.process is not None
    pgid = running.process["pgid"]
    asked = time.monotonic()
    cancel_operation(actor=operator, ctx=CTX, op=running)
    ended = wait_terminal(op, timeout=30)
    took = time.monotonic() - asked
    assert not group_members(pgid), "the command's process group is gone"
    return ended, took


def test_cancel_a_full_copy_removes_the_half_made_copy(admin, operator, start_agent, tmp_path):
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    source = busybox(admin, host)
    slow_hook(tmp_path, source, "clone", 30)
    new_name = f"{source.name}-copy"
    op = services.copy_container(actor=admin, ctx=CTX, container=source, new_name=new_name, snapshot=False)
    running_with(op, "lxc-copy")
    # The periodic sync (every 2 s here) lists the half-made copy while its clone hook sleeps.
    wait_for(
        lambda: Container.objects.filter(host=host, name=new_name).exists(), 15, what="the half-made row"
    )
    op, took = cancel_while_running(operator, op, "lxc-copy")
    assert op.status == "cancelled", (op.error, op.log)
    assert op.error == f"cancelled by {operator.username} while `lxc-copy` ran: the command was ended"
    assert took < 5
    assert not (Path(agent.lxc_path) / new_name).exists()
    assert not Container.objects.filter(host=host, name=new_name).exists()
    assert Operation.objects.active(op.lock_key) is None
    assert "removing the half-made container" in op.log
    row = AuditEvent.objects.get(action="operation.cancel", result="succeeded")
    assert row.actor_id == operator.pk and row.after["cancel_requested_by"] == operator.username
    # The source is free and whole: a new copy works.
    Path(source.lxc_path, source.name, "config").write_text(
        "".join(
            line
            for line in Path(source.lxc_path, source.name, "config").read_text().splitlines(keepends=True)
            if "lxc.hook.clone" not in line
        )
    )
    again = wait_terminal(
        services.copy_container(actor=admin, ctx=CTX, container=source, new_name=new_name, snapshot=False)
    )
    assert again.status == "succeeded", again.error + again.log


def test_cancel_a_debootstrap_waiting_on_its_mirror_leaves_nothing(admin, operator, start_agent):
    """A mirror that accepts the connection and never answers: debootstrap (and its wget) wait."""
    require_tool("debootstrap")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    cache = f"/var/tmp/console-test-debcache-{uuid.uuid4().hex[:6]}"
    os.environ["DEBIAN_MIRROR"] = f"http://127.0.0.1:{port}/debian"
    os.environ["DEBIAN_CACHE_DIR"] = cache
    try:
        agent = start_agent()
    finally:
        del os.environ["DEBIAN_MIRROR"]
        del os.environ["DEBIAN_CACHE_DIR"]
    try:
        host = Host.objects.get(slug=agent.slug)
        name = f"debcancel-{uuid.uuid4().hex[:4]}"
        op = services.create_container(actor=admin, ctx=CTX, host=host, name=name, template="debian")
        running_with(op, "debootstrap", timeout=60)
        time.sleep(1)  # debootstrap is waiting for the Release file
        op, took = cancel_while_running(operator, op, "debootstrap")
        assert op.status == "cancelled", (op.error, op.log)
        assert op.error.startswith(f"cancelled by {operator.username} while `debootstrap` ran")
        assert took < 5
        assert not os.path.exists(f"{cache}/partial-bookworm-amd64")
        assert not os.path.exists(f"{agent.lxc_path}/{name}")
        assert not Container.objects.filter(host=host, name=name).exists()
    finally:
        silent.close()
        shutil.rmtree(cache, ignore_errors=True)


def test_cancel_a_long_command_in_a_container(admin, operator, start_agent):
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    container = busybox(admin, host)
    started = wait_terminal(services.start_container(actor=admin, ctx=CTX, container=container))
    assert started.status == "succeeded", started.error
    container.refresh_from_db()
    op = services.attach_command(
        actor=operator, ctx=CTX, container=container, command="sleep 500", timeout=600
    )
    op, took = cancel_while_running(operator, op, "lxc-attach")
    assert op.status == "cancelled" and took < 5

    def sleeping() -> bool:
        ps = subprocess.run(
            ["lxc-attach", "-P", agent.lxc_path, "-n", container.name, "--", "ps"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        return "sleep 500" in ps

    # Ending lxc-attach's process group ends the command it runs in the container.
    wait_for(lambda: not sleeping(), 10, what="the command in the container to end")
    # The container is not locked: the next action runs.
    stop = wait_terminal(services.stop_container(actor=admin, ctx=CTX, container=container, force=True))
    assert stop.status == "succeeded", stop.error
