"""Destroying a container: confirmation, stop first, snapshots that depend on it, roles."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from console.errors import Conflict, Forbidden
from console.models import AuditEvent, Operation
from console.operations import RequestContext
from containers import services
from containers.models import Container


@pytest.mark.parametrize("confirm", ["web2", "WEB1", "web", ""])
def test_destroy_refuses_a_wrong_confirmation(client, admin, make_container, confirm):
    container = make_container("web1")
    client.force_login(admin)
    response = client.post(reverse("containers:destroy", args=[container.pk]), {"confirm": confirm})
    assert response.status_code == 400
    assert Operation.objects.count() == 0
    assert Container.objects.filter(pk=container.pk).exists()
    if confirm.strip():
        assert "type web1 exactly to confirm" in response.content.decode()


def test_destroy_with_the_right_name_redirects_to_the_operation(client, admin, make_container):
    container = make_container("web1")
    client.force_login(admin)
    response = client.post(reverse("containers:destroy", args=[container.pk]), {"confirm": "web1"})
    op = Operation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("operation-detail", args=[op.pk])
    assert op.kind == "container.destroy" and op.params["stop_first"] is False


def test_destroy_blocked_by_snapshots_is_shown_disabled_and_refused_once(client, admin, make_container):
    base = make_container("web1")
    make_container("web1-snap", origin=base, origin_kind="snapshot")
    client.force_login(admin)
    body = client.get(reverse("containers:detail", args=[base.pk])).content.decode()
    assert reverse("containers:destroy", args=[base.pk]) not in body  # not offered...
    disabled = r'<button type="button" class="danger" disabled title="[^"]*web1-snap[^"]*"[^>]*>Destroy…'
    assert re.search(disabled, body)
    assert "Destroy is not possible: these snapshots depend on it: web1-snap" in body  # ...and why
    page = client.get(reverse("containers:destroy", args=[base.pk])).content.decode()
    assert re.search(r'<button type="submit" class="danger" disabled', page)
    # A page opened before the snapshot was taken still posts: the refusal is said once.
    response = client.post(reverse("containers:destroy", args=[base.pk]), {"confirm": "web1"})
    assert response.status_code == 409 and Operation.objects.count() == 0
    assert response.content.decode().count("web1-snap") == 1


def test_destroy_of_a_running_container_without_stop_first_conflicts(client, admin, make_container):
    container = make_container("web1", state="RUNNING")
    client.force_login(admin)
    response = client.post(reverse("containers:destroy", args=[container.pk]), {"confirm": "web1"})
    assert response.status_code == 409
    assert "stop it first" in response.content.decode()
    assert Operation.objects.count() == 0
    response = client.post(
        reverse("containers:destroy", args=[container.pk]), {"confirm": "web1", "stop_first": "on"}
    )
    assert response.status_code == 302
    assert Operation.objects.get().params["stop_first"] is True


def test_destroy_by_an_operator_is_forbidden(client, operator, make_container):
    container = make_container("web1")
    client.force_login(operator)
    response = client.post(reverse("containers:destroy", args=[container.pk]), {"confirm": "web1"})
    assert response.status_code == 403
    assert Operation.objects.count() == 0


CTX = RequestContext(ip="192.0.2.10", request_id="req-0123456789")


def only_audit_event():
    events = list(AuditEvent.objects.all())
    assert len(events) == 1, events
    return events[0]


def test_operator_cannot_destroy(operator, make_container):
    container = make_container()
    with pytest.raises(Forbidden):
        services.destroy_container(actor=operator, ctx=CTX, container=container)
    assert Operation.objects.count() == 0
    assert only_audit_event().action == "container.destroy"


def test_destroy_of_a_running_container_needs_stop_first(admin, make_container):
    container = make_container(state="RUNNING")
    with pytest.raises(Conflict) as info:
        services.destroy_container(actor=admin, ctx=CTX, container=container)
    assert "stop it first" in info.value.message
    assert Operation.objects.count() == 0
    assert only_audit_event().result == "refused"


def test_destroy_with_stop_first_is_accepted(admin, make_container):
    container = make_container(state="RUNNING")
    op = services.destroy_container(actor=admin, ctx=CTX, container=container, stop_first=True)
    assert op.kind == "container.destroy"
    assert op.params == {"name": "web1", "lxc_path": "/var/lib/lxc", "stop_first": True}


def test_destroy_of_a_container_with_snapshots_lists_the_dependants(admin, make_container):
    base = make_container("base")
    make_container("snap-a", origin=base, origin_kind="snapshot")
    make_container("snap-b", origin=base, origin_kind="snapshot")
    make_container("full-copy", origin=base, origin_kind="copy")
    make_container("unrelated")
    with pytest.raises(Conflict) as info:
        services.destroy_container(actor=admin, ctx=CTX, container=base)
    assert "depend on it" in info.value.message
    assert "snap-a" in info.value.message and "snap-b" in info.value.message
    assert "full-copy" not in info.value.message and "unrelated" not in info.value.message
    assert Operation.objects.count() == 0
    assert only_audit_event().message == info.value.message


def test_destroy_of_a_container_with_only_full_copies_is_accepted(admin, make_container):
    # A full copy has its own rootfs: it does not depend on its origin.
    base = make_container("base")
    make_container("full-copy", origin=base, origin_kind="copy")
    op = services.destroy_container(actor=admin, ctx=CTX, container=base)
    assert op.kind == "container.destroy" and op.params["name"] == "base"
