"""The audit trail is append-only: rows can be written, never changed or deleted."""

from __future__ import annotations

import pytest
from django.db import transaction

from console.models import AuditEvent
from console.operations import RequestContext, audit

CTX = RequestContext(ip="192.0.2.10", request_id="req-0123456789")


@pytest.fixture
def event(admin, host):
    return audit(actor=admin, ctx=CTX, action="container.start", result="accepted", host=host, target="t")


def test_a_new_audit_event_can_be_written(event):
    assert AuditEvent.objects.filter(pk=event.pk, message="").exists()


def test_saving_an_existing_audit_event_is_refused(event):
    event.message = "rewritten"
    with pytest.raises(PermissionError):
        event.save()
    copy = AuditEvent(pk=event.pk, action="forged", result="accepted")
    with pytest.raises(PermissionError):
        copy.save()
    assert AuditEvent.objects.get(pk=event.pk).message == ""
    assert AuditEvent.objects.get(pk=event.pk).action == "container.start"


def test_deleting_an_audit_event_is_refused(event):
    with pytest.raises(PermissionError):
        event.delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.parametrize(
    "change",
    [
        lambda: AuditEvent.objects.update(message="x"),
        lambda: AuditEvent.objects.filter(action="container.start").update(message="x"),
        lambda: AuditEvent.objects.all().update(result="failed"),
        lambda: AuditEvent.objects.delete(),
        lambda: AuditEvent.objects.all().delete(),
        lambda: AuditEvent.objects.filter(action="container.start").delete(),
        lambda: AuditEvent.objects.bulk_update(list(AuditEvent.objects.all()), ["message"]),
    ],
    ids=[
        "manager-update",
        "filter-update",
        "all-update",
        "manager-delete",
        "all-delete",
        "filter-delete",
        "bulk",
    ],
)
def test_bulk_changes_to_audit_events_are_refused(event, change):
    # (bulk_update opens a savepoint-less atomic block: keep the test's transaction usable.)
    with pytest.raises(PermissionError), transaction.atomic():
        change()
    assert AuditEvent.objects.filter(pk=event.pk, message="", result="accepted").exists()
