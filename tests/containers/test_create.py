"""Creating a container: the form (Django test client) and the service (validate, authorize, lock,
audit, queue one operation)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console.errors import Busy, Conflict, Forbidden, InvalidInput
from console.models import AuditEvent, Operation
from console.operations import RequestContext
from containers import services


def test_create_form_refuses_a_bad_name_with_the_validation_message(client, admin, host):
    client.force_login(admin)
    response = client.post(
        reverse("containers:create"), {"host": "testhost", "name": "bad;name", "template": "busybox"}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert (
        "container names may contain only letters, digits, &#x27;-&#x27;, &#x27;_&#x27; and &#x27;.&#x27;"
        in body
    )
    assert 'value="bad;name"' in body  # the form is shown again with what was typed
    assert Operation.objects.count() == 0
    event = AuditEvent.objects.get()
    assert event.result == "refused" and event.params["name"] == "bad;name"


def test_create_form_refuses_a_template_that_is_not_offered(client, admin, host):
    # What decides: the host's reported capabilities (debootstrap for the Debian template), not
    # whether this machine has debootstrap: both answers are set here.
    client.force_login(admin)
    form = {"host": "testhost", "name": "web1", "template": "debian"}
    host.capabilities = {**host.capabilities, "debootstrap": {"available": False}}
    host.save()
    response = client.post(reverse("containers:create"), form)
    assert response.status_code == 400
    assert "debootstrap is not installed on host testhost" in response.content.decode()
    assert Operation.objects.count() == 0
    host.capabilities = {**host.capabilities, "debootstrap": {"available": True}}
    host.save()
    response = client.post(reverse("containers:create"), form)
    op = Operation.objects.get()
    assert response.status_code == 302 and (op.kind, op.params["template"]) == ("container.create", "debian")


def test_create_form_refuses_an_unknown_lxc_path(client, admin, host):
    client.force_login(admin)
    response = client.post(
        reverse("containers:create"),
        {"host": "testhost", "name": "web1", "template": "busybox", "lxc_path": "/etc"},
    )
    assert response.status_code == 400
    assert "unknown LXC path" in response.content.decode()
    assert Operation.objects.count() == 0


def test_create_form_valid_post_redirects_to_the_operation(client, admin, host):
    client.force_login(admin)
    response = client.post(
        reverse("containers:create"),
        {"host": "testhost", "name": "web1", "template": "busybox"},
        HTTP_X_REQUEST_ID="test-request-0001",
        REMOTE_ADDR="192.0.2.55",
    )
    op = Operation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("operation-detail", args=[op.pk])
    assert op.kind == "container.create"
    assert op.params == {"name": "web1", "template": "busybox", "lxc_path": "/var/lib/lxc"}
    event = AuditEvent.objects.get()
    assert (event.result, event.operation, event.actor) == ("accepted", op, admin)
    # Issue 12.4: the id is the server's; the client's own is kept apart, for correlation.
    assert event.request_id == response["X-Request-ID"] != "test-request-0001"
    assert event.client_request_id == "test-request-0001"
    assert event.ip == "192.0.2.55"


def test_create_by_an_operator_is_forbidden(client, operator, host):
    client.force_login(operator)
    response = client.post(
        reverse("containers:create"), {"host": "testhost", "name": "web1", "template": "busybox"}
    )
    assert response.status_code == 403
    assert "your role does not allow" in response.content.decode()
    assert Operation.objects.count() == 0


def test_create_of_an_existing_name_conflicts(client, admin, make_container):
    make_container("web1")
    client.force_login(admin)
    response = client.post(
        reverse("containers:create"), {"host": "testhost", "name": "web1", "template": "busybox"}
    )
    assert response.status_code == 409
    assert "already exists" in response.content.decode()
    assert Operation.objects.count() == 0


CTX = RequestContext(ip="192.0.2.10", request_id="req-0123456789")


def only_audit_event():
    events = list(AuditEvent.objects.all())
    assert len(events) == 1, events
    return events[0]


def test_create_by_admin_queues_one_operation_and_one_audit_event(
    admin, host, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        op = services.create_container(actor=admin, ctx=CTX, host=host, name="web1")
    assert len(callbacks) == 1
    assert Operation.objects.count() == 1
    op = Operation.objects.get()
    assert op.kind == "container.create"
    assert op.status == "pending"
    assert op.actor == admin
    assert op.host == host
    assert op.target == "container testhost/web1"
    assert op.lock_key == "container:testhost:/var/lib/lxc:web1"
    assert op.params == {"name": "web1", "template": "busybox", "lxc_path": "/var/lib/lxc"}
    event = only_audit_event()
    assert event.result == "accepted"
    assert event.operation == op
    assert event.action == "container.create"
    assert event.actor == admin and event.actor_name == "alice-admin"
    assert event.ip == "192.0.2.10"
    assert event.request_id == "req-0123456789"
    assert event.host == host
    assert event.target == "container testhost/web1"
    assert event.params == op.params


def test_create_normalises_the_lxc_path_into_params_and_lock_key(admin, host):
    host.extra_lxc_paths = ["/srv/pool1"]
    host.save()
    op = services.create_container(
        actor=admin, ctx=CTX, host=host, name="db_2.prod-x", lxc_path="/srv//pool1/"
    )
    assert op.params == {"name": "db_2.prod-x", "template": "busybox", "lxc_path": "/srv/pool1"}
    assert op.lock_key == "container:testhost:/srv/pool1:db_2.prod-x"


def test_create_accepts_any_template_when_the_host_has_not_reported_its_templates(admin, host):
    host.capabilities = {"lxc": {"available": True}}
    host.save()
    op = services.create_container(actor=admin, ctx=CTX, host=host, name="web1")
    assert op.params["template"] == "busybox"


@pytest.mark.parametrize(
    ("kwargs", "exc_type", "fragment"),
    [
        ({"name": "bad;name"}, InvalidInput, "may contain only letters"),
        ({"name": "-rf"}, InvalidInput, "must not start with"),
        ({"name": ""}, InvalidInput, "a container name is required"),
        ({"name": "a" * 64}, InvalidInput, "at most 63 characters"),
        ({"name": "web1", "template": "fedora"}, InvalidInput, "unknown template 'fedora'"),
        ({"name": "web1", "template": "debian", "release": "bookworm; rm -rf /"}, InvalidInput, "codename"),
        (
            {"name": "web1", "template": "tarball", "tarball": "/etc/shadow.tar"},
            InvalidInput,
            "allowed only under",
        ),
        (
            {
                "name": "web1",
                "template": "tarball",
                "tarball": "/var/lib/lxc-console/images/../../../etc/x.tar",
            },
            InvalidInput,
            "allowed only under",
        ),
        ({"name": "web1", "template": "tarball", "tarball": "relative.tar"}, InvalidInput, "absolute"),
        (
            {"name": "web1", "template": "tarball", "tarball": "/var/lib/lxc-console/images/a.zip"},
            InvalidInput,
            "must end with",
        ),
        ({"name": "web1", "template": "busybox; reboot"}, InvalidInput, "unknown template"),
        ({"name": "web1", "lxc_path": "/srv/other"}, InvalidInput, "unknown LXC path '/srv/other'"),
        ({"name": "web1", "lxc_path": "/var/lib/lxc/../../etc"}, InvalidInput, "unknown LXC path"),
        ({"name": "web1", "lxc_path": "var/lib/lxc"}, InvalidInput, "must be an absolute path"),
    ],
)
def test_create_refuses_bad_input_without_an_operation(
    admin, host, kwargs, exc_type, fragment, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks, pytest.raises(exc_type) as info:
        services.create_container(actor=admin, ctx=CTX, host=host, **kwargs)
    assert fragment in info.value.message
    assert callbacks == []
    assert Operation.objects.count() == 0
    event = only_audit_event()
    assert event.result == "refused"
    assert event.message == info.value.message
    assert event.action == "container.create"
    assert event.operation is None
    assert event.actor == admin
    assert event.ip == "192.0.2.10" and event.request_id == "req-0123456789"


def test_create_refuses_a_template_the_host_does_not_have(admin, host):
    host.capabilities = {"lxc": {"available": True, "templates": ["debian"]}}
    host.save()
    with pytest.raises(InvalidInput) as info:
        services.create_container(actor=admin, ctx=CTX, host=host, name="web1", template="busybox")
    assert info.value.message == "the busybox template is not installed on host testhost"
    assert info.value.field == "template"
    assert Operation.objects.count() == 0
    event = only_audit_event()
    assert (event.result, event.message) == ("refused", info.value.message)


def test_create_debian_requires_debootstrap_on_the_host(admin, host):
    host.capabilities = {
        "lxc": {"available": True, "templates": ["busybox"]},
        "debootstrap": {"available": False},
    }
    host.save()
    with pytest.raises(InvalidInput, match="debootstrap is not installed"):
        services.create_container(actor=admin, ctx=CTX, host=host, name="deb1", template="debian")
    assert Operation.objects.count() == 0


def test_create_refuses_a_duplicate_name(admin, host, make_container):
    make_container("web1")
    with pytest.raises(Conflict) as info:
        services.create_container(actor=admin, ctx=CTX, host=host, name="web1", lxc_path="/var/lib/lxc/")
    assert info.value.message == "a container named 'web1' already exists on host testhost"
    assert info.value.status_code == 409
    assert Operation.objects.count() == 0
    assert only_audit_event().result == "refused"


def test_create_allows_the_same_name_under_another_lxc_path(admin, host, make_container):
    host.extra_lxc_paths = ["/srv/pool1"]
    host.save()
    make_container("web1")
    op = services.create_container(actor=admin, ctx=CTX, host=host, name="web1", lxc_path="/srv/pool1")
    assert op.params["lxc_path"] == "/srv/pool1"


@pytest.mark.parametrize("role_user", ["operator", "viewer"])
def test_only_admins_create(request, host, role_user):
    user = request.getfixturevalue(role_user)
    with pytest.raises(Forbidden) as info:
        services.create_container(actor=user, ctx=CTX, host=host, name="web1")
    assert info.value.status_code == 403
    assert "admin" in info.value.message
    assert Operation.objects.count() == 0
    event = only_audit_event()
    assert (event.result, event.actor, event.message) == ("refused", user, info.value.message)


def test_anonymous_actor_is_forbidden(host):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(Forbidden):
        services.create_container(actor=AnonymousUser(), ctx=CTX, host=host, name="web1")
    event = only_audit_event()
    assert event.actor is None and event.result == "refused"


def test_a_second_create_of_the_same_name_is_busy(admin, host):
    first = services.create_container(actor=admin, ctx=CTX, host=host, name="web1")
    with pytest.raises(Busy) as info:
        services.create_container(actor=admin, ctx=CTX, host=host, name="web1")
    assert f"#{first.pk}" in info.value.message
    assert info.value.operation_id == first.pk
    assert Operation.objects.count() == 1
    assert list(AuditEvent.objects.order_by("id").values_list("result", flat=True)) == ["accepted", "refused"]
