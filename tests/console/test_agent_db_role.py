"""An agent's PostgreSQL role (console.db_roles): its own host's rows only, what an agent reports
only, the audit trail append-only. PostgreSQL only (``--database=postgres``)."""

from __future__ import annotations

import io
import secrets

import psycopg
import pytest
from django.db import connection

from console import db_roles
from console.models import AuditEvent, Host, Operation
from console.operations import SYSTEM, start_operation
from containers.models import Container

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="agent roles are PostgreSQL's (run with --database=postgres)"
)


def _connect(role: str, password: str):
    s = connection.settings_dict
    return psycopg.connect(
        host=s["HOST"], port=s["PORT"], dbname=s["NAME"], user=role, password=password, autocommit=True
    )


@pytest.fixture
def world(transactional_db, admin):
    hosts = [Host.objects.create(slug=slug, name=slug, lxc_path="/var/lib/lxc") for slug in ("vm1", "local")]
    rows = {}
    for host in hosts:
        container = Container.objects.create(host=host, name="web", lxc_path="/var/lib/lxc")
        op = start_operation(
            actor=admin,
            ctx=SYSTEM,
            host=host,
            kind="container.start",
            target=f"container {host.slug}/web",
            lock_key=f"container:{host.slug}:web",
            params={"name": "web"},
        )
        rows[host.slug] = (host, container, op)
    password = secrets.token_urlsafe(24)
    role = db_roles.create_or_reset(hosts[0].pk, password)
    conn = _connect(role, password)
    yield rows, conn
    conn.close()
    for host in hosts:
        db_roles.drop(host.pk)
    db_roles.teardown()
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'console_agent%%'")
        assert cursor.fetchall() == []


def _refused(conn, sql: str, params=()) -> str:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
        conn.execute(sql, params)
    return str(refused.value)


def test_a_hosts_role_writes_its_own_rows_and_sees_no_other_hosts(world):
    rows, conn = world
    (mine, my_container, my_op), (other, their_container, their_op) = rows["vm1"], rows["local"]
    assert conn.execute("SELECT current_user").fetchone()[0] == f"console_agent_{mine.pk}"

    # Its own host's rows: visible and updatable (what an agent reports).
    assert conn.execute("SELECT id FROM console_host").fetchall() == [(mine.pk,)]
    assert conn.execute("SELECT id FROM containers_container").fetchall() == [(my_container.pk,)]
    assert conn.execute("SELECT id FROM console_operation").fetchall() == [(my_op.pk,)]
    heartbeat = "UPDATE console_host SET last_heartbeat = now() WHERE id = %s"
    assert conn.execute(heartbeat, [mine.pk]).rowcount == 1
    assert conn.execute("UPDATE containers_container SET state = 'RUNNING'").rowcount == 1
    assert (
        conn.execute(
            "UPDATE console_operation SET status = 'running', progress = 10, log = log || 'x' WHERE id = %s",
            [my_op.pk],
        ).rowcount
        == 1
    )
    assert conn.execute("DELETE FROM containers_container WHERE id = %s", [my_container.pk]).rowcount == 1
    # Another host's rows: invisible, so UPDATE and DELETE find nothing; INSERTing one is refused.
    for table, change, pk in (
        ("console_host", "last_heartbeat = now()", other.pk),
        ("containers_container", "state = 'RUNNING'", their_container.pk),
        ("console_operation", "status = 'succeeded'", their_op.pk),
    ):
        assert conn.execute(f"SELECT 1 FROM {table} WHERE id = %s", [pk]).fetchall() == []
        assert conn.execute(f"UPDATE {table} SET {change} WHERE id = %s", [pk]).rowcount == 0
    assert conn.execute("DELETE FROM containers_container WHERE id = %s", [their_container.pk]).rowcount == 0
    assert Container.objects.filter(pk=their_container.pk).exists()
    assert Operation.objects.get(pk=their_op.pk).status == "pending"
    # Nor can it hand one of its rows to another host.
    Container.objects.create(host=mine, name="db", lxc_path="/var/lib/lxc")
    assert "row-level security" in _refused(
        conn, "UPDATE containers_container SET host_id = %s WHERE host_id = %s", [other.pk, mine.pk]
    )

    # What only the console may change, even on its own rows: refused.
    rename = "UPDATE console_host SET slug = 'x' WHERE id = %s"
    assert "permission denied" in _refused(conn, rename, [mine.pk])
    assert "permission denied" in _refused(
        conn, "UPDATE console_operation SET params = '{}' WHERE id = %s", [my_op.pk]
    )
    assert "permission denied" in _refused(
        conn, "UPDATE console_operation SET host_id = %s WHERE id = %s", [other.pk, my_op.pk]
    )


def test_a_hosts_role_cannot_insert_another_hosts_rows(world):
    rows, conn = world
    other = rows["local"][0]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        conn.execute(
            "INSERT INTO console_auditevent (actor_name, created_at, request_id, client_request_id, action,"
            " host_id, target, params, result, message) VALUES ('agent', now(), '', '', 'x', %s, '', '{}',"
            " 'refused', '')",
            [other.pk],
        )
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        conn.execute(
            "INSERT INTO console_operation (kind, host_id, target, lock_key, params, status, progress,"
            " progress_label, log, commands, error, result, celery_id, worker, cancel_requested_by,"
            " signature, created_at) VALUES ('container.destroy', %s, 't', 'forged', '{}', 'pending', 0, '',"
            " '', '[]', '', '{}', '', '', '', '', now())",
            [other.pk],
        )


def test_the_audit_trail_is_insert_only_and_auth_tables_are_out_of_reach(world):
    rows, conn = world
    mine = rows["vm1"][0]
    inserted = conn.execute(
        "INSERT INTO console_auditevent (actor_name, created_at, request_id, client_request_id, action,"
        " host_id, target, params, result, message) VALUES ('agent vm1', now(), '', '', 'agent.test', %s,"
        " '', '{}', 'refused', 'hello') RETURNING id",
        [mine.pk],
    ).fetchone()[0]
    assert AuditEvent.objects.get(pk=inserted).message == "hello"
    for sql in (
        "SELECT message FROM console_auditevent",
        "UPDATE console_auditevent SET message = 'rewritten'",
        "DELETE FROM console_auditevent",
        "SELECT * FROM auth_user",
        "UPDATE auth_user SET is_superuser = true",
        "INSERT INTO auth_user (username) VALUES ('mallory')",
        "SELECT * FROM console_team",
        "SELECT * FROM console_rolebinding",
        "INSERT INTO console_rolebinding (team_id, role, all_hosts) VALUES (1, 'admin', true)",
        "SELECT * FROM django_session",
        "DELETE FROM django_session",
        "SELECT * FROM console_passwordlink",
        "SELECT * FROM otp_totp_totpdevice",
        "SELECT * FROM axes_accessattempt",
    ):
        assert "permission denied" in _refused(conn, sql), sql
    assert AuditEvent.objects.filter(message="rewritten").count() == 0


def test_the_management_command_gives_revokes_and_drops_a_role(transactional_db):
    from django.core.management import call_command

    host = Host.objects.create(slug="vm7", name="vm7", lxc_path="/var/lib/lxc")
    out = io.StringIO()
    try:
        call_command("agent_db_role", "vm7", stdout=out)
        url = out.getvalue().strip()
        assert url.startswith(f"postgres://console_agent_{host.pk}:")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT slug FROM console_host").fetchall() == [("vm7",)]
        call_command("agent_db_role", "vm7", "--revoke", stdout=out)
        assert f"console_agent_{host.pk}: logins refused" in out.getvalue()
        with pytest.raises(psycopg.OperationalError, match="not permitted to log in|password authentication"):
            psycopg.connect(url, connect_timeout=3)
    finally:
        call_command("agent_db_role", "vm7", "--drop", stdout=out)
        db_roles.teardown()
    assert not db_roles.role_exists(host.pk)
