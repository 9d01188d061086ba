"""One active operation per container: the service's busy answer and the database's lock key."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from console import operations
from console.errors import Busy
from console.models import AuditEvent, Operation
from console.operations import RequestContext
from containers import services

CTX = RequestContext(ip="192.0.2.10", request_id="req-0123456789")


def only_audit_event():
    events = list(AuditEvent.objects.all())
    assert len(events) == 1, events
    return events[0]


def test_a_second_operation_on_a_busy_container_names_the_active_one(admin, make_container):
    container = make_container()
    first = services.start_container(actor=admin, ctx=CTX, container=container)
    for attempt in (services.start_container, services.destroy_container):
        with pytest.raises(Busy) as info:
            attempt(actor=admin, ctx=CTX, container=container)
        assert f"#{first.pk}" in info.value.message
        assert info.value.operation_id == first.pk
        assert info.value.status_code == 409
    assert Operation.objects.count() == 1
    results = list(AuditEvent.objects.order_by("id").values_list("result", flat=True))
    assert results == ["accepted", "refused", "refused"]


def test_a_running_operation_also_keeps_the_lock_and_a_finished_one_releases_it(admin, make_container):
    container = make_container()
    first = services.start_container(actor=admin, ctx=CTX, container=container)
    Operation.objects.filter(pk=first.pk).update(status="running")
    with pytest.raises(Busy):
        services.start_container(actor=admin, ctx=CTX, container=container)
    first.finish("failed", error="boom")
    second = services.start_container(actor=admin, ctx=CTX, container=container)
    assert second.pk != first.pk and second.status == "pending"


def test_other_containers_are_not_blocked(admin, make_container):
    services.start_container(actor=admin, ctx=CTX, container=make_container("web1"))
    services.start_container(actor=admin, ctx=CTX, container=make_container("web2"))
    assert Operation.objects.count() == 2


def test_losing_the_race_to_the_database_lock_is_reported_as_busy(admin, make_container, monkeypatch):
    # Another request created its operation between our check and our insert.
    container = make_container()
    other = Operation.objects.create(
        kind="container.stop", host=container.host, target=container.target, lock_key=container.lock_key
    )
    real = operations.active_operation
    calls = []

    def stale_then_real(lock_key):
        calls.append(lock_key)
        return None if len(calls) == 1 else real(lock_key)

    monkeypatch.setattr(operations, "active_operation", stale_then_real)
    with pytest.raises(Busy) as info:
        services.start_container(actor=admin, ctx=CTX, container=container)
    assert f"#{other.pk}" in info.value.message
    assert Operation.objects.count() == 1
    assert only_audit_event().result == "refused"


def new_op(host, status="pending", lock_key="container:testhost:/var/lib/lxc:web1"):
    return Operation.objects.create(kind="x", host=host, target="t", lock_key=lock_key, status=status)


def test_two_active_operations_with_the_same_lock_key_are_refused_by_the_database(host):
    new_op(host)
    with pytest.raises(IntegrityError), transaction.atomic():
        new_op(host)
    with pytest.raises(IntegrityError), transaction.atomic():
        new_op(host, status="running")
    assert Operation.objects.count() == 1


def test_a_finished_operation_frees_the_lock_key(host):
    first = new_op(host)
    Operation.objects.filter(pk=first.pk).update(status="succeeded")
    second = new_op(host)
    assert second.pk != first.pk
    Operation.objects.filter(pk=second.pk).update(status="cancelled")
    new_op(host, status="running")
    new_op(host, status="failed")
    assert Operation.objects.filter(lock_key="container:testhost:/var/lib/lxc:web1").count() == 4


def test_different_lock_keys_may_be_active_together(host):
    new_op(host, lock_key="a")
    new_op(host, lock_key="b")
    assert Operation.objects.filter(status="pending").count() == 2
