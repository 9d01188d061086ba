"""Agents: one per host, each consuming only its own queue; heartbeats; no agent means pending."""

from __future__ import annotations

import os
import uuid

import pytest
from django.urls import reverse

from console.models import Host, Operation
from console.operations import RequestContext
from containers import services
from tests.host.helpers import wait_terminal
from tests.hosttools import wait_for

pytestmark = pytest.mark.host


def test_each_operation_runs_on_its_own_hosts_agent(admin, start_agent):
    first = start_agent()
    second = start_agent()
    assert first.lxc_path != second.lxc_path
    host_a, host_b = Host.objects.get(slug=first.slug), Host.objects.get(slug=second.slug)
    assert host_a.agent_online and host_b.agent_online
    assert host_a.capabilities["lxc"]["available"] and "busybox" in host_a.capabilities["lxc"]["templates"]
    # The host's own subnets, which libvirt networks must not overlap: lxcbr0 (prepare-host) among them.
    assert {"ifname": "lxcbr0", "address": "10.0.3.1", "network": "10.0.3.0/24"} in host_a.capabilities[
        "ipv4"
    ]

    ops = []
    for host in (host_a, host_b, host_a, host_b):
        name = f"two-{uuid.uuid4().hex[:6]}"
        ops.append(
            (host, name, services.create_container(actor=admin, ctx=RequestContext(), host=host, name=name))
        )
    for host, name, op in ops:
        op = wait_terminal(op)
        assert op.status == "succeeded", op.error + op.log
        own, other = (first, second) if host == host_a else (second, first)
        assert op.worker == f"agent-{own.slug}"
        assert os.path.isfile(f"{own.lxc_path}/{name}/config")
        assert not os.path.exists(f"{other.lxc_path}/{name}")
    # Only what this test made: the host's libvirt-LXC domains (lxc:///) show up as its containers too.
    assert host_a.containers.filter(lxc_path=first.lxc_path).count() == 2
    assert host_b.containers.filter(lxc_path=second.lxc_path).count() == 2


def test_operation_waits_with_a_clear_message_when_no_agent_runs(client, admin, start_agent):
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    agent.stop()
    # The agent is gone; pretend its last heartbeat is old.
    Host.objects.filter(pk=host.pk).update(last_heartbeat=None)
    client.force_login(admin)
    response = client.post(
        reverse("containers:create"), {"host": host.slug, "name": "waiting", "template": "busybox"}
    )
    assert response.status_code == 302
    op = Operation.objects.get(kind="container.create")
    card = client.get(reverse("operation-card", args=[op.pk]), HTTP_HX_REQUEST="true")
    assert card.status_code == 200
    assert f"No agent for host {host.slug} is running" in card.content.decode()
    op.refresh_from_db()
    assert op.status == "pending" and op.celery_id

    # When an agent for that host starts, it picks the queued operation up.
    again = start_agent(slug=host.slug, lxc_path=agent.lxc_path)
    op = wait_terminal(op)
    assert op.status == "succeeded", op.error + op.log
    assert os.path.isfile(f"{again.lxc_path}/waiting/config")


def test_agent_restart_settles_operations_it_left_running(admin, start_agent):
    """The target of a start that a dead agent left running is gone: the restarted agent reads the
    host and records the start as failed, with the state it found (console.recovery)."""
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    agent.stop()
    stale = Operation.objects.create(
        kind="container.start",
        host=host,
        target="container x",
        lock_key="container:x",
        status="running",
        params={"name": "never-made", "lxc_path": agent.lxc_path},
    )
    start_agent(slug=agent.slug, lxc_path=agent.lxc_path)
    stale = wait_for(
        lambda: Operation.objects.filter(pk=stale.pk, status="failed").first(), 10, what="orphan to fail"
    )
    assert (
        stale.error
        == "the agent stopped while this operation was running: the container is gone, not RUNNING"
    )
    assert stale.finished_at is not None and "the agent restarted" in stale.log


def test_unreachable_broker_leaves_the_operation_pending_for_the_agents_claim(
    admin, host, transactional_db, settings
):
    from console.celery import app as celery_app
    from tests.host.conftest import use_broker

    old = use_broker("redis://127.0.0.1:1/0")
    try:
        op = services.create_container(actor=admin, ctx=RequestContext(), host=host, name="nobroker")
    finally:
        use_broker(old)
    op.refresh_from_db()
    assert op.status == "pending" and not op.error and not op.celery_id
    assert f"the agent of {host.slug} takes this operation from the database within" in op.log
    assert celery_app.conf.broker_url == old
