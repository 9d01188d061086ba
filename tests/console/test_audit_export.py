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
    data = client.get(reverse("audit-list"), {"format": "json", "result": "refused"}).json()
    assert [e["action"] for e in data["events"]] == ["container.stop"]
    e = data["events"][0]
    assert e["actor"] == "vera-viewer" and e["ip"] == "198.51.100.7" and e["request_id"] == "req-export-1"
    assert e["host"] == "testhost" and "operate" in e["message"]
    data = client.get(
        reverse("audit-list"), {"format": "json", "actor": "alice-admin", "host": "testhost"}
    ).json()
    assert sorted(x["target"] for x in data["events"]) == [
        "container testhost/old",
        "container testhost/web1",
    ]


def test_csv_export_round_trips(client, admin, events):
    client.force_login(admin)
    response = client.get(reverse("audit-list"), {"format": "csv", "action": "container.start"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 2
    first = next(r for r in rows if r["host"] == "testhost")
    assert json.loads(first["params"]) == {"name": "web1"} and json.loads(first["before"]) == {
        "state": "STOPPED"
    }


def test_time_filter(client, admin, events):
    client.force_login(admin)
    since = (timezone.now() - timedelta(days=30)).date().isoformat()
    data = client.get(reverse("audit-list"), {"format": "json", "since": since}).json()
    assert "container testhost/old" not in [e["target"] for e in data["events"]]
    data = client.get(reverse("audit-list"), {"format": "json", "until": since}).json()
    assert [e["target"] for e in data["events"]] == ["container testhost/old"]


def test_users_see_only_their_hosts_rows_in_exports(client, make_user, events):
    scoped = make_user("scoped", role="view", hosts=[events["other"]])
    client.force_login(scoped)
    data = client.get(reverse("audit-list"), {"format": "json"}).json()
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
