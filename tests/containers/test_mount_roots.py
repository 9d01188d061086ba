"""Allowed bind-mount roots: a system directory needs ticking."""

from __future__ import annotations

import pytest

from console.errors import Conflict, InvalidInput
from console.models import Operation
from console.operations import RequestContext
from containers import services

CTX = RequestContext(ip="192.0.2.10", request_id="req-0123456789")


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
