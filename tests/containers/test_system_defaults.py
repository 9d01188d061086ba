"""The lxc-* tools' system defaults (lxc-config): validation, role, one operation."""

from __future__ import annotations

import pytest

from console.errors import Conflict, Forbidden, InvalidInput
from console.models import AuditEvent, Operation
from console.operations import RequestContext
from containers import services

CTX = RequestContext(ip="192.0.2.10", request_id="req-0123456789")


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
