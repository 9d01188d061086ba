"""Enrolment end to end on PostgreSQL + Redis with ACLs: a host added in the console, its agent
enrolled with the one-time token (``manage.py agent --enrol``), running on the credentials it got
only, then revoked: its logins stop working at once."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import psycopg
import pytest
import redis
from django.db import connection

from console import db_roles, enrolment, signing
from console.errors import Conflict
from console.models import AuditEvent, Host
from console.operations import RequestContext
from containers import services
from tests.host.conftest import ROOT
from tests.host.helpers import wait_terminal

pytestmark = [
    pytest.mark.host,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="enrolment is for PostgreSQL deployments"),
]


def _enrol(token: str, console: str, path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "manage.py",
            "agent",
            "--enrol",
            token,
            "--console",
            console,
            "--credentials",
            str(path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_enrol_run_and_revoke(
    superuser, acl_redis, start_agent, live_server, settings, tmp_path, lxc_root, monkeypatch
):
    settings.REDIS_URL = acl_redis.url  # the console's (admin) Redis: it makes the agent's user
    ctx = RequestContext()
    host, _, token = enrolment.add_host(actor=superuser, ctx=ctx, slug="vm1", name="a VM", hours="1")
    Host.objects.filter(pk=host.pk).update(lxc_path=str(lxc_root / "vm1"))
    host.refresh_from_db()
    # Queued before the enrolment (signed under the host's first key): re-signed by it, so the
    # enrolled agent runs it.
    early = services.create_container(actor=superuser, ctx=ctx, host=host, name="early")
    path = tmp_path / "etc" / "agent.json"
    try:
        done = _enrol(token, live_server.url, path)
        assert done.returncode == 0, done.stderr
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        given = json.loads(path.read_text())
        assert given["host"] == "vm1" and f"console_agent_{host.pk}:" in given["database_url"]
        assert given["redis_url"].startswith("redis://agent-vm1:")
        assert Host.objects.get(pk=host.pk).key_generation == 1
        assert (
            given["agent_key"]
            == signing.derive_host_key("vm1", 1).hex()
            != signing.derive_host_key("vm1").hex()
        )
        # The token worked once.
        again = _enrol(token, live_server.url, tmp_path / "again.json")
        assert again.returncode != 0 and "unknown, used, revoked or expired" in again.stderr
        assert not (tmp_path / "again.json").exists()
        rows = AuditEvent.objects.filter(action="host.enrol").order_by("pk")
        assert [r.result for r in rows] == ["succeeded", "refused"]
        assert token not in json.dumps(
            [r.params for r in rows] + [r.after for r in rows] + [r.message for r in rows]
        )

        # The agent runs on those credentials only (its own role, its own Redis user).
        monkeypatch.setenv("CONSOLE_AGENT_CREDENTIALS", str(path))
        agent = start_agent(slug="vm1", lxc_path=str(lxc_root / "vm1"))
        host = Host.objects.get(pk=host.pk)
        assert host.lxc_path == str(lxc_root / "vm1")
        op = wait_terminal(services.create_container(actor=superuser, ctx=ctx, host=host, name="enrolled"))
        assert op.status == "succeeded", op.error + op.log
        early = wait_terminal(early)
        assert early.status == "succeeded" and early.worker == "agent-vm1", early.error + early.log
        assert f"console_agent_{host.pk}" in _backend_users()

        # Revoked: its logins are refused and its open sessions end at once.
        revoked_at = time.monotonic()
        after = enrolment.revoke(actor=superuser, ctx=ctx, host=Host.objects.get(pk=host.pk), confirm="vm1")
        assert after["redis_user"] == "disabled" and after["database_connections_ended"] >= 1
        assert f"console_agent_{host.pk}" not in _backend_users()
        with pytest.raises(psycopg.OperationalError, match="not permitted to log in|password authentication"):
            psycopg.connect(given["database_url"], connect_timeout=3)
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis.from_url(given["redis_url"]).ping()
        assert acl_redis.client.execute_command("CLIENT", "LIST").count(b"user=agent-vm1") == 0
        print(f"revoked: credentials refused {time.monotonic() - revoked_at:.3f} s after the revoke")
        # Its heartbeat stops, and nothing more is queued for it.
        beat = Host.objects.get(pk=host.pk).last_heartbeat
        time.sleep(3)
        assert Host.objects.get(pk=host.pk).last_heartbeat == beat
        with pytest.raises(Conflict, match="revoked"):
            services.create_container(
                actor=superuser, ctx=ctx, host=Host.objects.get(pk=host.pk), name="late"
            )
        assert AuditEvent.objects.filter(action="host.revoke", result="succeeded").count() == 1
        agent.stop()
    finally:
        db_roles.drop(host.pk)
        db_roles.teardown()


def _backend_users() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT usename FROM pg_stat_activity WHERE usename IS NOT NULL")
        return [row[0] for row in cursor.fetchall()]
