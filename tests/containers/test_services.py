"""Container services: validate, authorize, lock, audit, and queue exactly one operation."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from console import operations
from console.errors import Busy, Conflict, Forbidden, InvalidInput
from console.models import AuditEvent, Operation
from console.operations import RequestContext, audit
from containers import services
from containers.models import Container

CTX = RequestContext(ip="192.0.2.10", request_id="req-0123456789")


@pytest.fixture
def make_container(host):
    def make(name="web1", state="STOPPED", **kwargs):
        kwargs.setdefault("lxc_path", host.lxc_path)
        return Container.objects.create(host=host, name=name, state=state, **kwargs)

    return make


def only_audit_event():
    events = list(AuditEvent.objects.all())
    assert len(events) == 1, events
    return events[0]


# --- create -------------------------------------------------------------------------------------


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


# --- lifecycle ----------------------------------------------------------------------------------


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


def test_operator_cannot_destroy(operator, make_container):
    container = make_container()
    with pytest.raises(Forbidden):
        services.destroy_container(actor=operator, ctx=CTX, container=container)
    assert Operation.objects.count() == 0
    assert only_audit_event().action == "container.destroy"


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


# --- the database lock itself -------------------------------------------------------------------


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


# --- the audit trail is append-only -------------------------------------------------------------


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


# --- the lxc-* tools' system defaults (lxc-config) ------------------------------------------


@pytest.mark.parametrize(
    "key, value, error, words",
    [
        ("lxc.rootfs.path", "/x", InvalidInput, "is not one of"),
        ("lxc.default_config", "/etc/lxc/other.conf", InvalidInput, "is not one of"),
        ("lxc.lxcpath", "/srv/not-a-path-of-this-host", InvalidInput, "unknown LXC path"),
        # Refused for its newline before the path is even looked up (issue 12.6).
        ("lxc.lxcpath", "/var/lib/lxc\nlxc.bdev.lvm.vg = evil", InvalidInput, "control characters"),
        ("lxc.lxcpath", "/dev/sda", InvalidInput, "unknown LXC path"),
        ("lxc.bdev.lvm.vg", "-vg", InvalidInput, "not a volume group"),
        ("lxc.bdev.lvm.vg", "vg 0", InvalidInput, "not a volume group"),
        ("lxc.bdev.zfs.root", "tank/a@snap", InvalidInput, "not a ZFS dataset"),
        ("lxc.bdev.zfs.root", "tank;rm", InvalidInput, "not a ZFS dataset"),
        ("lxc.bdev.lvm.vg", "lxc", Conflict, "is lxc already"),
    ],
)
def test_system_defaults_refuse_bad_keys_and_values(admin, host, key, value, error, words):
    host.capabilities = {
        **host.capabilities,
        "lxc": {**host.capabilities["lxc"], "system_config": {"lxc.bdev.lvm.vg": "lxc"}},
    }
    host.save()
    with pytest.raises(error, match=words):
        services.set_lxc_system_config(actor=admin, ctx=CTX, host=host, key=key, value=value)
    assert Operation.objects.count() == 0
    assert AuditEvent.objects.get().result == "refused"


def test_system_defaults_need_an_admin_and_queue_one_operation(admin, operator, host):
    with pytest.raises(Forbidden):
        services.set_lxc_system_config(actor=operator, ctx=CTX, host=host, key="lxc.bdev.lvm.vg", value="vg1")
    op = services.set_lxc_system_config(
        actor=admin, ctx=CTX, host=host, key="lxc.lxcpath", value="/var/lib/lxc/"
    )
    assert (op.kind, op.params) == ("host.lxc_conf", {"key": "lxc.lxcpath", "value": "/var/lib/lxc"})
    assert op.lock_key == "lxcconf:testhost"


# --- allowed bind-mount roots -------------------------------------------------------------------


@pytest.mark.parametrize("root", ["/etc", "/usr/local/share", "/root", "/var", "/var/lib", "/boot"])
def test_a_system_directory_as_a_mount_root_is_refused_unless_allowed(admin, host, root):
    with pytest.raises(InvalidInput, match="a system directory of the host") as info:
        services.set_mount_roots(actor=admin, ctx=CTX, host=host, roots=["/srv/shared", root])
    assert info.value.message.startswith(f"{root}:")
    assert not Operation.objects.exists()
    op = services.set_mount_roots(actor=admin, ctx=CTX, host=host, roots=[root], allow_system=True)
    # Not saved by the request: the agent saves them once it found each directory on the host.
    assert op.kind == "host.mount_roots" and op.params == {"roots": [root]}
    host.refresh_from_db()
    assert host.mount_roots == []


def test_mount_roots_that_are_not_system_directories_need_no_ticking(admin, host):
    op = services.set_mount_roots(actor=admin, ctx=CTX, host=host, roots=["/srv/shared/", "/var/tmp/x"])
    assert op.params == {"roots": ["/srv/shared", "/var/tmp/x"]}
    host.mount_roots = ["/srv/shared", "/var/tmp/x"]
    host.save()
    with pytest.raises(Conflict, match="already"):
        services.set_mount_roots(actor=admin, ctx=CTX, host=host, roots=["/var/tmp/x", "/srv/shared"])
