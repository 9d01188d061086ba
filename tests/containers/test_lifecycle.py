"""Start and stop: the action views and the service (roles, states, arguments)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console.errors import Conflict, Forbidden, InvalidInput
from console.models import AuditEvent, Operation
from console.operations import RequestContext
from containers import services


def test_start_action_with_htmx_answers_the_operation_card(client, operator, make_container):
    container = make_container()
    client.force_login(operator)
    response = client.post(reverse("containers:action", args=[container.pk, "start"]), HTTP_HX_REQUEST="true")
    op = Operation.objects.get()
    assert response.status_code == 202
    assert f'id="operation-{op.pk}"' in response.content.decode()
    assert op.kind == "container.start"


def test_start_action_by_a_viewer_is_refused(client, viewer, make_container):
    container = make_container()
    client.force_login(viewer)
    response = client.post(reverse("containers:action", args=[container.pk, "start"]), HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    assert "your role does not allow" in response.content.decode()
    assert Operation.objects.count() == 0


def test_stop_action_refuses_a_bad_timeout(client, operator, make_container):
    container = make_container(state="RUNNING")
    client.force_login(operator)
    response = client.post(
        reverse("containers:action", args=[container.pk, "stop"]), {"timeout": "soon"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    assert "between 0 and 3600" in response.content.decode()
    assert Operation.objects.count() == 0


def test_unknown_action_is_404(client, admin, make_container):
    container = make_container()
    client.force_login(admin)
    response = client.post(reverse("containers:action", args=[container.pk, "reboot"]))
    assert response.status_code == 404
    assert Operation.objects.count() == 0


def test_actions_need_post(client, admin, make_container):
    container = make_container()
    client.force_login(admin)
    assert client.get(reverse("containers:action", args=[container.pk, "start"])).status_code == 405
    assert Operation.objects.count() == 0


CTX = RequestContext(ip="192.0.2.10", request_id="req-0123456789")


def only_audit_event():
    events = list(AuditEvent.objects.all())
    assert len(events) == 1, events
    return events[0]


def test_viewer_cannot_start(viewer, make_container):
    container = make_container()
    with pytest.raises(Forbidden) as info:
        services.start_container(actor=viewer, ctx=CTX, container=container)
    assert "operate" in info.value.message
    assert Operation.objects.count() == 0
    event = only_audit_event()
    assert (event.result, event.action, event.target) == (
        "refused",
        "container.start",
        "container testhost/web1",
    )
    assert event.message == info.value.message


def test_operator_can_start_a_stopped_container(operator, make_container, django_capture_on_commit_callbacks):
    container = make_container()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        op = services.start_container(actor=operator, ctx=CTX, container=container)
    assert len(callbacks) == 1
    assert (op.kind, op.status, op.actor) == ("container.start", "pending", operator)
    assert op.lock_key == container.lock_key == "container:testhost:/var/lib/lxc:web1"
    assert op.params == {"name": "web1", "lxc_path": "/var/lib/lxc"}
    event = only_audit_event()
    assert event.result == "accepted" and event.operation == op
    assert event.before == {"state": "STOPPED", "pid": None}


def test_operator_can_stop_a_running_container(operator, make_container, settings):
    settings.CONTAINER_STOP_TIMEOUT_SECONDS = 17
    container = make_container(state="RUNNING", pid=4242)
    op = services.stop_container(actor=operator, ctx=CTX, container=container)
    assert op.kind == "container.stop"
    assert op.params == {"name": "web1", "lxc_path": "/var/lib/lxc", "timeout": 17, "force": False}
    assert only_audit_event().before == {"state": "RUNNING", "pid": 4242}


def test_stop_passes_timeout_and_force(operator, make_container):
    container = make_container(state="RUNNING")
    op = services.stop_container(actor=operator, ctx=CTX, container=container, timeout=0, force=True)
    assert (op.params["timeout"], op.params["force"]) == (0, True)


@pytest.mark.parametrize("timeout", [-1, 3601, "10", 1.5])
def test_stop_refuses_a_bad_timeout(operator, make_container, timeout):
    container = make_container(state="RUNNING")
    with pytest.raises(InvalidInput, match="between 0 and 3600"):
        services.stop_container(actor=operator, ctx=CTX, container=container, timeout=timeout)
    assert Operation.objects.count() == 0
    assert only_audit_event().result == "refused"


def test_viewer_cannot_stop(viewer, make_container):
    with pytest.raises(Forbidden):
        services.stop_container(actor=viewer, ctx=CTX, container=make_container(state="RUNNING"))
    assert Operation.objects.count() == 0


@pytest.mark.parametrize("state", ["RUNNING", "FROZEN"])
def test_start_of_a_running_container_conflicts(admin, make_container, state):
    container = make_container(state=state)
    with pytest.raises(Conflict) as info:
        services.start_container(actor=admin, ctx=CTX, container=container)
    assert info.value.message == f"web1 is already {state.lower()}"
    assert Operation.objects.count() == 0
    assert only_audit_event().message == info.value.message


def test_stop_of_a_stopped_container_conflicts(admin, make_container):
    container = make_container(state="STOPPED")
    with pytest.raises(Conflict, match="web1 is already stopped"):
        services.stop_container(actor=admin, ctx=CTX, container=container)
    assert Operation.objects.count() == 0
    assert only_audit_event().result == "refused"
