"""A real agent on its own credentials only: its PostgreSQL role (row-level security) and its
Redis user (ACLs). It registers, detects, syncs and runs operations with nothing refused, while
another host's rows stay out of its reach. PostgreSQL only (``--database=postgres``)."""

from __future__ import annotations

import json
import secrets
import time
import uuid

import pytest
from django.db import connection

from console import broker_acl, db_roles
from console.models import Host
from console.operations import RequestContext
from containers import services
from containers.models import Container
from tests.host.helpers import wait_terminal
from tests.hosttools import wait_for

pytestmark = [
    pytest.mark.host,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="agent roles are PostgreSQL's"),
]


def test_an_agent_runs_on_its_own_role_and_redis_user(admin, acl_redis, start_agent, lxc_root, agent_log_dir):
    slug = f"t-{uuid.uuid4().hex[:8]}"
    host = Host.objects.create(slug=slug, name=slug, lxc_path=str(lxc_root / slug))
    other = Host.objects.create(slug=f"o-{uuid.uuid4().hex[:8]}", name="other", lxc_path="/var/lib/lxc")
    theirs = Container.objects.create(host=other, name="theirs", lxc_path="/var/lib/lxc", state="RUNNING")
    db_password, redis_password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    role = db_roles.create_or_reset(host.pk, db_password)
    broker_acl.set_user(acl_redis.client, slug, redis_password)
    acl_redis.client.execute_command("ACL", "LOG", "RESET")
    agent = None
    try:
        agent = start_agent(
            slug=slug,
            lxc_path=host.lxc_path,
            broker=acl_redis.url_for(broker_acl.user_name(slug), redis_password),
            env={"DATABASE_URL": db_roles.database_url(role, db_password)},
        )
        host.refresh_from_db()
        assert host.capabilities["lxc"]["available"]
        ctx = RequestContext()
        op = wait_terminal(services.create_container(actor=admin, ctx=ctx, host=host, name="least"))
        assert op.status == "succeeded", op.error + op.log
        for action in (services.start_container, services.stop_container):
            container = Container.objects.get(host=host, name="least")
            op = wait_terminal(action(actor=admin, ctx=ctx, container=container))
            assert op.status == "succeeded", op.error + op.log
        # A browser terminal: the agent's relay uses its own terminal:<slug>:* lists.
        container = Container.objects.get(host=host, name="least")
        op = wait_terminal(services.start_container(actor=admin, ctx=ctx, container=container))
        assert op.status == "succeeded", op.error + op.log
        _terminal_round_trip(admin, Container.objects.get(pk=container.pk), acl_redis.url, agent_log_dir)
        synced = Host.objects.get(pk=host.pk).last_inventory_sync
        wait_for(
            lambda: Host.objects.get(pk=host.pk).last_inventory_sync != synced, 15, what="an inventory sync"
        )
        time.sleep(1)
        log = agent.log_path.read_text()
        for refusal in ("permission denied", "row-level security", "NOPERM", "no permissions"):
            assert refusal not in log, log[-3000:]
        assert acl_redis.client.execute_command("ACL", "LOG") == []
        # The other host's container was neither seen nor touched by its syncs.
        theirs.refresh_from_db()
        assert theirs.state == "RUNNING" and theirs.host_id == other.pk
    finally:
        if agent is not None:
            agent.stop()
        db_roles.drop(host.pk)
        db_roles.teardown()


def _terminal_round_trip(admin, container, redis_url: str, log_dir) -> None:
    """Type a command in the container's terminal through the web (the admin Redis user) and the
    agent (its own): the output comes back; the session ends when the page closes."""
    from websockets.sync.client import connect
    from websockets.typing import Origin

    from console.models import Operation
    from containers import terminal
    from tests.host.conftest import Web
    from tests.host.helpers import browser_session
    from tests.host.test_terminal import read_until

    web = Web(redis_url, log_dir)
    try:
        origin = f"http://{web.address}"
        key, cookie = browser_session(admin)
        ctx = RequestContext(ip="127.0.0.1")
        ticket = terminal.issue_ticket(
            actor=admin, ctx=ctx, container=container, origin=origin, session_key=key
        )
        url = f"ws://{web.address}/ws/terminal/{ticket.token}/"
        with connect(url, origin=Origin(origin), additional_headers=cookie, open_timeout=10) as ws:
            ws.send(json.dumps({"type": "input", "data": "echo least-$((6*7))\r"}))
            assert b"least-42" in read_until(ws, b"least-42")
        session = wait_for(
            lambda: Operation.objects.filter(kind="container.terminal", status="succeeded").first(),
            20,
            what="the terminal session to end",
        )
        assert session.host_id == container.host_id
    finally:
        web.stop()
