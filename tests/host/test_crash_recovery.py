"""Operations survive a broker or agent crash (real Redis, real agents, real containers).

Slow commands are made slow the way an administrator's would be: a container's own hooks
(``lxc.hook.pre-start`` for a start, ``lxc.hook.clone`` for ``lxc-copy``) sleep, so the agent
can be killed at a known moment in the middle of the real command. Each hook also appends a line
to a file: that counts the commands that really ran on the host.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from console.celery import app as celery_app
from console.models import Host, Operation
from console.operations import RequestContext
from console.recovery import group_members
from containers import services
from containers.models import Container
from tests.host.conftest import RedisServer, use_broker
from tests.host.helpers import wait_terminal
from tests.hosttools import wait_for

pytestmark = pytest.mark.host

CTX = RequestContext()


def busybox(admin, host: Host, name: str | None = None) -> Container:
    name = name or f"cr-{uuid.uuid4().hex[:6]}"
    op = wait_terminal(services.create_container(actor=admin, ctx=CTX, host=host, name=name))
    assert op.status == "succeeded", op.error + op.log
    return Container.objects.get(host=host, name=name)


def slow_hook(tmp_path: Path, container: Container, hook: str, seconds: float) -> Path:
    """Give ``container`` a ``hook`` that sleeps; returns the file each run of it appends to."""
    runs = tmp_path / f"{container.name}-{hook}.runs"
    script = tmp_path / f"{container.name}-{hook}.sh"
    script.write_text(f"#!/bin/sh\necho ran >> {runs}\nsleep {seconds}\n")
    script.chmod(0o755)
    with open(Path(container.lxc_path) / container.name / "config", "a") as config:
        config.write(f"lxc.hook.{hook} = {script}\n")
    return runs


def runs_of(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def running_with(op: Operation, program: str, timeout: float = 30) -> Operation:
    """Wait until ``op`` runs ``program`` (its process recorded on the row)."""

    def now_running():
        row = Operation.objects.get(pk=op.pk)
        if row.process and os.path.basename(row.process["argv"][0]) == program:
            return row
        assert row.status in ("pending", "running"), (row.status, row.error, row.log)
        return None

    return wait_for(now_running, timeout, interval=0.05, what=f"{program} to run")


def lxc_state(container: Container) -> str:
    import subprocess

    out = subprocess.run(
        ["lxc-info", "-P", container.lxc_path, "-n", container.name, "-s", "-H"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.stdout.strip()


@pytest.fixture
def crashable_redis(tmp_path, redis_url):
    """A Redis of this test's own that it may kill; the web side (this process) uses it meanwhile."""
    server = RedisServer(tmp_path / "redis")
    old = use_broker(server.url)
    yield server
    use_broker(old)
    server.stop()


def test_redis_killed_with_operations_queued_and_running_loses_none(
    admin, start_agent, crashable_redis, tmp_path
):
    agent_a = start_agent(broker=crashable_redis.url)
    agent_b = start_agent(broker=crashable_redis.url)
    host_a, host_b = Host.objects.get(slug=agent_a.slug), Host.objects.get(slug=agent_b.slug)
    ca, ca2, cb = busybox(admin, host_a), busybox(admin, host_a), busybox(admin, host_b)
    ca_runs = slow_hook(tmp_path, ca, "pre-start", 3)
    ca2_runs = slow_hook(tmp_path, ca2, "pre-start", 0)
    cb_runs = slow_hook(tmp_path, cb, "pre-start", 0)

    # B's agent is down: its start waits in Redis. A's start is running (its hook sleeps).
    agent_b.stop()
    queued = services.start_container(actor=admin, ctx=CTX, container=cb)
    running = services.start_container(actor=admin, ctx=CTX, container=ca)
    running_with(running, "lxc-start")
    assert crashable_redis.client.llen(host_b.queue_name) == 1

    # The crash: nothing flushed. While Redis is down a start is still accepted: it waits as a
    # pending row, and A's agent (which runs on) claims it from the database.
    crashable_redis.kill()
    during = services.start_container(actor=admin, ctx=CTX, container=ca2)
    assert during.status == "pending" and "could not be reached" in Operation.objects.get(pk=during.pk).log
    crashable_redis.start()
    crashable_redis.client.flushall()  # the worst case: every message it held is gone

    agent_b = start_agent(slug=agent_b.slug, lxc_path=agent_b.lxc_path, broker=crashable_redis.url)
    back = time.monotonic()
    for op, container, runs in ((queued, cb, cb_runs), (running, ca, ca_runs), (during, ca2, ca2_runs)):
        op = wait_terminal(op, timeout=30)
        assert op.status == "succeeded", (op.error, op.log)
        assert [c["argv"][0] for c in op.commands].count("lxc-start") == 1
        assert runs_of(runs) == 1, "the start ran once on the host"
        assert lxc_state(container) == "RUNNING"
        assert Operation.objects.active(op.lock_key) is None
    # The bound the README states: a lost message runs within the claim period after the agent is back.
    assert time.monotonic() - back < 10
    assert not Operation.objects.filter(host__in=[host_a, host_b], status__in=["pending", "running"]).exists()


def test_a_message_delivered_twice_and_the_claim_run_the_command_once(admin, start_agent, tmp_path):
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    container = busybox(admin, host)
    runs = slow_hook(tmp_path, container, "pre-start", 0)
    agent.stop()
    op = services.start_container(actor=admin, ctx=CTX, container=container)
    # The same wake-up a second time (a redelivery after a lost ack looks the same).
    celery_app.send_task(
        "console.run_operation",
        args=[op.pk],
        kwargs={"host": host.slug, "kind": op.kind, "signature": op.signature},
        queue=host.queue_name,
    )
    start_agent(slug=agent.slug, lxc_path=agent.lxc_path)  # two messages, and the claim loop
    op = wait_terminal(op)
    assert op.status == "succeeded", op.error + op.log
    time.sleep(2.5)  # every delivery and at least two claim rounds have had their chance
    op.refresh_from_db()
    assert [c["argv"][0] for c in op.commands].count("lxc-start") == 1
    assert runs_of(runs) == 1


@pytest.mark.parametrize("outcome", ["copy-finishes", "copy-killed"])
def test_agent_killed_during_a_full_copy(admin, start_agent, tmp_path, outcome):
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    source = busybox(admin, host)
    (Path(source.lxc_path) / source.name / "rootfs" / "payload").write_bytes(os.urandom(8 << 20))
    runs = slow_hook(tmp_path, source, "clone", 4)
    new_name = f"{source.name}-copy"
    op = services.copy_container(actor=admin, ctx=CTX, container=source, new_name=new_name, snapshot=False)
    op = running_with(op, "lxc-copy")
    wait_for(lambda: runs_of(runs) == 1, 30, what="the clone hook to run")
    agent.kill()
    pgid = op.process["pgid"]
    assert group_members(pgid), "lxc-copy outlives the agent"
    if outcome == "copy-killed":
        os.killpg(pgid, signal.SIGKILL)
    wait_for(lambda: not group_members(pgid), 30, what="lxc-copy to end")
    assert Operation.objects.get(pk=op.pk).status == "running"

    start_agent(slug=agent.slug, lxc_path=agent.lxc_path)
    op = wait_terminal(op, timeout=30)
    target = Path(agent.lxc_path) / new_name
    if outcome == "copy-finishes":
        assert op.status == "succeeded", (op.error, op.log)
        assert op.result["recovered_after_restart"] is True
        copy = Container.objects.get(host=host, name=new_name)
        assert copy.origin_id == source.pk and copy.origin_kind == "copy"
        assert (target / "rootfs" / "payload").read_bytes() == (
            Path(source.lxc_path) / source.name / "rootfs" / "payload"
        ).read_bytes()
    else:
        assert op.status == "failed"
        assert "ended with an unknown status (it was killed" in op.error
        assert f"the half-made container {new_name} was removed" in op.error
        assert not target.exists()
        assert not Container.objects.filter(host=host, name=new_name).exists()
    assert Operation.objects.active(op.lock_key) is None
    # The command that outlived the agent is in the operation's list, with the status it had.
    (copy_cmd,) = [c for c in op.commands if c["argv"][0] == "lxc-copy"]
    assert copy_cmd["exit"] == (0 if outcome == "copy-finishes" else -1)


def test_agent_killed_during_start_and_during_snapshot(admin, start_agent, tmp_path):
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    booting, origin = busybox(admin, host), busybox(admin, host)
    slow_hook(tmp_path, booting, "pre-start", 3)
    slow_hook(tmp_path, origin, "clone", 3)
    start = services.start_container(actor=admin, ctx=CTX, container=booting)
    snap_name = f"{origin.name}-snap"
    snapshot = services.copy_container(
        actor=admin, ctx=CTX, container=origin, new_name=snap_name, snapshot=True
    )
    running_with(start, "lxc-start")
    running_with(snapshot, "lxc-copy")
    agent.kill()
    start_agent(slug=agent.slug, lxc_path=agent.lxc_path)

    start = wait_terminal(start, timeout=30)
    assert start.status == "succeeded", (start.error, start.log)
    assert lxc_state(booting) == "RUNNING" and start.result["state"] == "RUNNING"
    assert start.result["recovered_after_restart"] is True
    snapshot = wait_terminal(snapshot, timeout=30)
    assert snapshot.status == "succeeded", (snapshot.error, snapshot.log)
    snap = Container.objects.get(host=host, name=snap_name)
    assert snap.origin_id == origin.pk and snap.origin_kind == "snapshot"
    assert (Path(agent.lxc_path) / snap_name / "config").is_file()


def test_a_pending_operation_of_an_offline_host_is_cancelled_and_the_next_runs(
    admin, client, start_agent, tmp_path
):
    from django.urls import reverse

    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    container = busybox(admin, host)
    runs = slow_hook(tmp_path, container, "pre-start", 0)
    agent.stop()
    Host.objects.filter(pk=host.pk).update(last_heartbeat=None)
    stuck = services.start_container(actor=admin, ctx=CTX, container=container)
    with pytest.raises(Exception, match="busy"):
        services.start_container(actor=admin, ctx=CTX, container=container)

    client.force_login(admin)
    page = client.get(reverse("host-detail", args=[host.slug])).content.decode()
    assert "1 operation</a> waits for this host's agent" in page
    response = client.post(reverse("operation-cancel", args=[stuck.pk]))
    assert response.status_code == 302
    stuck.refresh_from_db()
    assert stuck.status == "cancelled" and stuck.error == f"cancelled by {admin.username} before it ran"
    row = stuck.audit_events.model.objects.filter(action="operation.cancel").get()
    assert (row.result, row.actor_id, row.after) == ("succeeded", admin.pk, {"status": "cancelled"})

    following = services.start_container(actor=admin, ctx=CTX, container=container)
    start_agent(slug=agent.slug, lxc_path=agent.lxc_path)  # the cancelled one's message is delivered too
    following = wait_terminal(following)
    assert following.status == "succeeded", following.error + following.log
    time.sleep(1.5)
    stuck.refresh_from_db()
    assert stuck.status == "cancelled" and stuck.commands == [] and stuck.started_at is None
    assert runs_of(runs) == 1


def test_an_agent_outlives_a_redis_restart_with_an_operation_running(
    admin, start_agent, crashable_redis, tmp_path
):
    """Redis killed while a command runs (its message taken, not yet acknowledged) and started
    again: the operation ends once, and the agent lives on and takes messages from the new Redis.
    (kombu 5.7 ended the worker there: "Unrecoverable error: AttributeError('NoneType' object has
    no attribute 'hostname')" while it restored the unacknowledged message.)"""
    agent = start_agent(broker=crashable_redis.url)
    host = Host.objects.get(slug=agent.slug)
    container = busybox(admin, host)
    runs = slow_hook(tmp_path, container, "pre-start", 5)
    running = services.start_container(actor=admin, ctx=CTX, container=container)
    running_with(running, "lxc-start")
    crashable_redis.kill()
    time.sleep(1)
    crashable_redis.start()
    use_broker(crashable_redis.url)
    running = wait_terminal(running, timeout=30)
    assert running.status == "succeeded", (running.error, running.log)
    assert runs_of(runs) == 1
    time.sleep(2)  # the worker's reaction to the lost connection has happened by now
    assert agent.proc.poll() is None, agent.log_path.read_text()[-3000:]
    after = services.create_container(actor=admin, ctx=CTX, host=host, name=f"{container.name}-b")
    after = wait_terminal(after, timeout=30)
    assert after.status == "succeeded" and after.celery_id, (after.error, after.celery_id)
    wait_for(
        lambda: f"[{after.celery_id}] received" in agent.log_path.read_text(),
        30,
        what="the agent to take a message from the restarted Redis",
    )
    assert agent.proc.poll() is None
