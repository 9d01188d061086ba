"""Every mutating request writes exactly one audit row, whether it is accepted, refused or fails."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from console.models import AuditEvent, Team
from tests.console.test_permission_matrix import MATRIX

POST_ROUTES = sorted(name for name, (_get, post) in MATRIX.items() if post not in (None, "any"))


@pytest.fixture
def world(db, host, make_container):
    c = make_container(
        "web1", state="RUNNING", pid=1, config_text="lxc.rootfs.path = dir:/var/lib/lxc/web1/rootfs\n"
    )
    host.mount_roots = ["/srv"]
    host.save()
    from storage.models import LoopDevice, Pool

    loop = LoopDevice.objects.create(
        host=host, device="/dev/loop7", backing_file="/var/lib/lxc-console/storage/a.img"
    )
    pool = Pool.objects.create(host=host, name="p1", kind="dir", lxc_path="/srv/p1")
    from networks.models import Network

    network = Network.objects.create(host=host, name="net1", bridge="virbr9")
    from console.models import Operation

    op = Operation.objects.create(kind="container.start", host=host, target="container web1", lock_key="k")
    return {
        "op": op,
        "c": c,
        "host": host,
        "team": Team.objects.create(name="t1"),
        "person": get_user_model().objects.create_user("m-target"),
        "loop": loop,
        "pool": pool,
        "network": network,
    }


def url_for(name: str, w: dict) -> str:
    kwargs = {
        "storage:loop-detach": {"pk": w["loop"].pk},
        "storage:loop-mkfs": {"pk": w["loop"].pk},
        "storage:pool-destroy": {"pk": w["pool"].pk},
        "team-detail": {"pk": w["team"].pk},
        "host-update": {"slug": w["host"].slug},
        "host-agent": {"slug": w["host"].slug},
        "operation-cancel": {"pk": w["op"].pk},
        "containers:autostart": {"slug": w["host"].slug},
        "containers:mount-roots": {"slug": w["host"].slug},
        "containers:action": {"pk": w["c"].pk, "action": "start"},
        "containers:libvirt-create": {},
        "containers:libvirt-action": {"pk": w["c"].pk, "action": "start"},
        "containers:libvirt-xml": {"pk": w["c"].pk},
        "containers:lxc-conf": {"slug": "testhost"},
        "networks:create": {},
        "networks:action": {"pk": w["network"].pk, "action": "start"},
        "networks:reservation": {"pk": w["network"].pk, "change": "add"},
    }.get(name)
    if name.startswith("user-") and name != "user-create":
        kwargs = {"pk": w["person"].pk}
    if kwargs is None and name.startswith("containers:") and name != "containers:create":
        kwargs = {"pk": w["c"].pk}
    return reverse(name, kwargs=kwargs or {})


PAYLOADS = {
    "operation-cancel": [{}, {}],  # pending (cancelled, or refused to a viewer), then ended already
    "team-list": [{}, {"name": "bad;name"}, {"name": "newteam"}],
    "host-update": [
        {},
        {"name": "x", "address": "a b", "libvirt_uri": "lxc:///"},
        {"name": "Rack 1", "libvirt_uri": "lxc:///"},
    ],
    "host-list": [{}, {"slug": "Bad", "hours": "24"}, {"slug": "vm9", "name": "VM 9", "hours": "24"}],
    "host-agent": [
        {},
        {"do": "token", "hours": "0"},
        {"do": "token", "hours": "24"},
        {"do": "revoke", "confirm": "wrong"},
        {"do": "revoke", "confirm": "testhost"},
    ],
    "team-detail": [
        {},
        {"do": "add-member", "username": "nobody"},
        {"do": "grant", "role": "view", "scope": "all"},
    ],
    "containers:create": [{}, {"name": "-bad", "template": "busybox"}, {"name": "ok", "template": "busybox"}],
    "containers:action": [{}],
    "containers:destroy": [{}, {"confirm": "wrong"}, {"confirm": "web1"}],
    "containers:config": [
        {},
        {"mode": "keys", "lxc.start.delay": "x"},
        {"mode": "keys", "lxc.start.delay": "3"},
    ],
    "containers:limits": [
        {},
        {"key": "cpu.shares", "value": "1"},
        {"key": "cpu.shares", "value": "512", "persist": "on"},
    ],
    "containers:hooks": [
        {},
        {"hook": "pre-start", "script": "no shebang"},
        {"hook": "pre-start", "script": "#!/bin/sh\n"},
    ],
    "containers:mounts": [
        {},
        {"source": "/etc", "target": "mnt"},
        {"source": "/srv/a", "target": "mnt/a", "read_only": "on"},
    ],
    "containers:autostart": [{}, {"group": "a b"}],
    "containers:terminal-ticket": [{}],
    "containers:files": [{}, {"path": "/x\x00"}, {"path": "/etc"}, {"file": "/etc/hosts"}],
    "containers:mount-roots": [{}, {"roots": "/"}, {"roots": "/srv\n/data"}],
    "storage:loop-create": [{}, {"name": "x;y", "size": "-1"}],
    "storage:loop-detach": [{}, {"confirm": "wrong"}],
    "storage:loop-mkfs": [{}, {"confirm": "wrong"}],
    "storage:pool-create": [{}, {"name": "..", "kind": "dir"}],
    "storage:pool-destroy": [{}, {"confirm": "wrong"}],
    "containers:libvirt-create": [
        {},
        {
            "mode": "form",
            "host": "testhost",
            "name": "-bad",
            "memory_mib": "64",
            "vcpus": "1",
            "init": "/bin/sh",
            "rootfs": "/srv/r",
        },
        {"mode": "xml", "host": "testhost", "xml": '<!DOCTYPE d [<!ENTITY x "y">]><domain type="lxc"/>'},
    ],
    "containers:libvirt-action": [{}],
    "containers:convert": [{}, {"new_name": "-bad"}],
    "containers:lxc-conf": [
        {"key": "lxc.lxcpath", "value": "/var/lib/lxc"},
        {"key": "lxc.rootfs.path", "value": "x"},
    ],
    "containers:libvirt-xml": [{"mode": "save", "text": "<domain/>"}, {"mode": "preview", "text": "x"}],
    "networks:create": [
        {},
        {
            "host": "testhost",
            "name": "n1",
            "bridge": "virbr77",
            "forward_mode": "nat",
            "address": "192.168.250.1",
            "netmask": "255.255.255.0",
            "dhcp_start": "10.0.0.2",
            "dhcp_end": "10.0.0.9",
        },
    ],
    "networks:action": [{}],
    "networks:reservation": [{"mac": "01:00:5e:00:00:01", "ip": "10.0.0.5"}, {"mac": "x"}],
    "account-password": [{}],
    "account-totp-start": [{}],
    "account-totp-confirm": [{"token": "000000"}],
    "account-totp-remove": [{}],
    "user-create": [{}, {"username": "bad name", "how": "invite"}, {"username": "newuser", "how": "invite"}],
    "user-deactivate": [{}, {"confirm": "wrong"}, {"confirm": "m-target"}],
    "user-reactivate": [{}],
    "user-reset-password": [{}, {"confirm": "wrong"}, {"confirm": "m-target"}],
    "user-remove-2fa": [{}, {"confirm": "m-target"}],
}


def test_every_post_route_has_payloads():
    assert set(POST_ROUTES) <= set(PAYLOADS) | {"logout", "login"}


@pytest.mark.parametrize("name", POST_ROUTES)
@pytest.mark.parametrize("role", ["viewer", "admin", "superuser"])
def test_one_audit_row_per_post(name, role, client, world, make_user):
    user = {
        "viewer": lambda: make_user("v1", role="view"),
        "admin": lambda: make_user("a1", role="admin"),
        "superuser": lambda: make_user("s1", role=None, superuser=True),
    }[role]()
    client.force_login(user)
    for payload in PAYLOADS[name]:
        before = AuditEvent.objects.count()
        response = client.post(url_for(name, world), payload)
        rows = list(AuditEvent.objects.order_by("pk")[before:])
        assert len(rows) == 1, (name, role, payload, response.status_code, [r.action for r in rows])
        row = rows[0]
        assert row.actor_id == user.pk and row.request_id == response["X-Request-ID"]
        if response.status_code >= 400:
            assert row.result == "refused", (name, payload, response.status_code)
        # Free the container's lock for the next payload.
        from console.models import Operation

        Operation.objects.update(status="succeeded")
