"""A container's backing store follows the pool that holds its LXC path."""

from __future__ import annotations

import pytest

from console.errors import InvalidInput
from console.models import AuditEvent, Operation
from storage.models import Pool
from tests.storage.conftest import CTX


def test_container_on_a_btrfs_pool_gets_btrfs_backing_store(admin, storage_host):
    from containers import services as containers

    Pool.objects.create(host=storage_host, name="fast", kind="btrfs", source="/dev/loop1", lxc_path="/p/fast")
    storage_host.extra_lxc_paths = ["/p/fast"]
    storage_host.save()
    op = containers.create_container(actor=admin, ctx=CTX, host=storage_host, name="web", lxc_path="/p/fast")
    assert op.params["backing_store"] == "btrfs"
    plain = containers.create_container(actor=admin, ctx=CTX, host=storage_host, name="web2")
    assert "backing_store" not in plain.params


def test_container_backing_store_must_fit_the_path(admin, storage_host):
    from containers import services as containers

    for store in ("zfs", "btrfs", "loop; rm -rf /"):
        with pytest.raises(InvalidInput):
            containers.create_container(
                actor=admin, ctx=CTX, host=storage_host, name="web", backing_store=store
            )
    assert Operation.objects.count() == 0
    assert AuditEvent.objects.filter(result="refused").count() == 3
