"""Audit page filters, CSV/JSON export, and retention pruning (itself audited)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from console.models import AuditEvent, Host
from console.operations import RequestContext, audit

CTX = RequestContext(ip="198.51.100.7", request_id="req-export-1")


def body(response) -> bytes:
    """The export is streamed: its body comes in chunks."""
    assert response.status_code == 200 and response.streaming
    return b"".join(response.streaming_content)


def export_csv(client, **query) -> list[dict]:
    response = client.get(reverse("audit-list"), {"format": "csv", **query})
    return list(csv.DictReader(io.StringIO(body(response).decode())))


def export_json(client, **query) -> dict:
    return json.loads(body(client.get(reverse("audit-list"), {"format": "json", **query})))


@pytest.fixture
def events(db, host, admin, viewer):
    other = Host.objects.create(slug="other", name="other")
    audit(
        actor=admin,
        ctx=CTX,
        action="container.start",
        result="accepted",
        host=host,
        target="container testhost/web1",
        params={"name": "web1"},
        before={"state": "STOPPED"},
    )
    audit(
        actor=viewer,
        ctx=CTX,
        action="container.stop",
        result="refused",
        host=host,
        target="container testhost/web1",
        message="your role does not allow 'operate' actions",
    )
    audit(
        actor=admin,
        ctx=CTX,
        action="container.start",
        result="accepted",
        host=other,
        target="container other/db1",
    )
    old = audit(
        actor=admin,
        ctx=CTX,
        action="container.create",
        result="accepted",
        host=host,
        target="container testhost/old",
    )
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "UPDATE console_auditevent SET created_at = %s WHERE id = %s",
            [timezone.now() - timedelta(days=400), old.pk],
        )
    return {"other": other}


def test_json_export_has_every_field_and_respects_filters(client, admin, events):
    client.force_login(admin)
    data = export_json(client, result="refused")
    assert [e["action"] for e in data["events"]] == ["container.stop"]
    e = data["events"][0]
    assert "client_request_id" in e and "operation_status" in e and len(e) == 16
    assert e["actor"] == "vera-viewer" and e["ip"] == "198.51.100.7" and e["request_id"] == "req-export-1"
    assert e["host"] == "testhost" and "operate" in e["message"]
    data = export_json(client, actor="alice-admin", host="testhost")
    assert sorted(x["target"] for x in data["events"]) == [
        "container testhost/old",
        "container testhost/web1",
    ]


def test_csv_export_round_trips(client, admin, events):
    client.force_login(admin)
    response = client.get(reverse("audit-list"), {"format": "csv", "action": "container.start"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body(response).decode())))
    assert len(rows) == 2
    first = next(r for r in rows if r["host"] == "testhost")
    assert json.loads(first["params"]) == {"name": "web1"} and json.loads(first["before"]) == {
        "state": "STOPPED"
    }


def test_time_filter(client, admin, events):
    client.force_login(admin)
    since = (timezone.now() - timedelta(days=30)).date().isoformat()
    data = export_json(client, since=since)
    assert "container testhost/old" not in [e["target"] for e in data["events"]]
    data = export_json(client, until=since)
    assert [e["target"] for e in data["events"]] == ["container testhost/old"]


def test_users_see_only_their_hosts_rows_in_exports(client, make_user, events):
    scoped = make_user("scoped", role="view", hosts=[events["other"]])
    client.force_login(scoped)
    data = export_json(client)
    assert [e["target"] for e in data["events"]] == ["container other/db1"]


def test_prune_removes_only_old_rows_and_audits_itself(events):
    from axes.models import AccessFailureLog, AccessLog

    old = timezone.now() - timedelta(days=400)
    for name in ("old-login", "new-login"):
        AccessLog.objects.create(username=name, ip_address="192.0.2.1", user_agent="t", path_info="/login/")
        AccessFailureLog.objects.create(
            username=name, ip_address="192.0.2.1", user_agent="t", path_info="/l/"
        )
    # attempt_time is auto_now_add: age the "old" ones afterwards.
    AccessLog.objects.filter(username="old-login").update(attempt_time=old)
    AccessFailureLog.objects.filter(username="old-login").update(attempt_time=old)
    before = AuditEvent.objects.count()
    call_command("prune_audit", "--days", "365")
    assert not AuditEvent.objects.filter(target="container testhost/old").exists()
    assert list(AccessLog.objects.values_list("username", flat=True)) == ["new-login"]
    assert list(AccessFailureLog.objects.values_list("username", flat=True)) == ["new-login"]
    prune = AuditEvent.objects.get(action="audit.prune")
    assert (
        prune.after == {"removed": 1, "login_records_removed": 2}
        and prune.params["retention_days"] == 365
        and prune.actor_name == "system"
    )
    assert AuditEvent.objects.count() == before  # one removed, one (the pruning) added


def test_nothing_else_can_delete_or_edit_audit_rows(events):
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.update(message="x")
    row = AuditEvent.objects.first()
    row.message = "edited"
    with pytest.raises(PermissionError):
        row.save()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def test_csv_cells_that_a_spreadsheet_would_evaluate_are_neutralized_in_every_column(client, superuser, host):
    from django.contrib.auth import get_user_model

    hostile = get_user_model().objects.create_user(username="@SUM(1+1)", password="x" * 20)
    audit(
        actor=hostile,
        ctx=RequestContext(ip=None, request_id="-cmd|' /C calc'!A0"),
        action="=cmd",
        result="refused",
        host=host,
        target='=HYPERLINK("http://evil.example/x")',
        params={"name": "=1+1"},
        message="\tTAB",
    )
    audit(actor=hostile, ctx=CTX, action="+x", result="refused", target="\rCR", message="-2+3")
    client.force_login(superuser)
    response = client.get(reverse("audit-list"), {"format": "csv"})
    rows = list(csv.reader(io.StringIO(body(response).decode(), newline="")))
    assert len(rows) == 3
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), (cell, row)
    first = dict(zip(rows[0], rows[2], strict=True))
    assert first["actor"] == "'@SUM(1+1)" and first["action"] == "'=cmd"
    assert first["target"] == '\'=HYPERLINK("http://evil.example/x")'
    assert first["request_id"] == "'-cmd|' /C calc'!A0" and first["message"] == "'\tTAB"
    assert json.loads(first["params"]) == {"name": "=1+1"}
    second = dict(zip(rows[0], rows[1], strict=True))
    assert second["target"] == "'\rCR" and second["message"] == "'-2+3" and second["action"] == "'+x"
    # JSON carries the values as they are: it is not read by spreadsheets.
    events = json.loads(body(client.get(reverse("audit-list"), {"format": "json"})))["events"]
    assert {e["target"] for e in events} == {'=HYPERLINK("http://evil.example/x")', "\rCR"}


@pytest.mark.parametrize("n_rows", [0, 1, 7, 9])
def test_the_export_is_streamed_in_chunks_and_stays_valid(client, superuser, host, monkeypatch, n_rows):
    from console import audit_export

    monkeypatch.setattr(audit_export, "CHUNK_ROWS", 3)
    for i in range(n_rows):
        audit(
            actor=superuser, ctx=CTX, action="container.start", result="accepted", host=host, target=f"c{i}"
        )
    client.force_login(superuser)
    response = client.get(reverse("audit-list"), {"format": "json"})
    chunks = list(response.streaming_content)
    # start, one chunk per 3 rows, end
    assert len(chunks) == 2 + -(-n_rows // 3)
    data = json.loads(b"".join(chunks))
    assert [e["target"] for e in data["events"]] == [f"c{i}" for i in reversed(range(n_rows))]
    assert data["truncated"] is False
    rows = list(
        csv.DictReader(io.StringIO(body(client.get(reverse("audit-list"), {"format": "csv"})).decode()))
    )
    assert [r["target"] for r in rows] == [f"c{i}" for i in reversed(range(n_rows))]


def test_the_export_stops_at_the_row_limit_and_says_so(client, superuser, host, settings):
    settings.AUDIT_EXPORT_MAX_ROWS = 4
    for i in range(6):
        audit(
            actor=superuser, ctx=CTX, action="container.start", result="accepted", host=host, target=f"c{i}"
        )
    client.force_login(superuser)
    data = export_json(client)
    assert len(data["events"]) == 4 and data["truncated"] is True
    assert (
        len(
            list(
                csv.DictReader(
                    io.StringIO(body(client.get(reverse("audit-list"), {"format": "csv"})).decode())
                )
            )
        )
        == 4
    )


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_the_export_runs_the_same_queries_for_few_and_many_rows(client, admin, host, fmt):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.console.conftest import make_rows

    def export_queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            body(client.get(reverse("audit-list"), {"format": fmt}))
        return len(ctx.captured_queries)

    client.force_login(admin)
    make_rows(host, admin, 0, 2)
    few = export_queries()
    make_rows(host, admin, 2, 42)
    assert export_queries() == few


def test_prune_refreshes_sqlite_planner_statistics(events):
    """Without them SQLite reads a viewer's audit page by merging indexes and sorting every match."""
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's autovacuum keeps its own statistics")
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS sqlite_stat1")
    call_command("prune_audit", "--days", "365")
    with connection.cursor() as cursor:
        cursor.execute("SELECT idx FROM sqlite_stat1 WHERE tbl = 'console_auditevent'")
        assert "audit_host_time" in {row[0] for row in cursor.fetchall()}
