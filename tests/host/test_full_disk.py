"""A full disk, for real: an LXC path on a 1 MiB tmpfs. The busybox template cannot copy busybox
(about 2 MiB) there, so ``lxc-create`` fails with the kernel's "No space left on device"."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid

import pytest

from console.models import Operation
from console.operations import RequestContext
from containers import services
from containers.models import Container
from tests.host.helpers import wait_terminal

pytestmark = pytest.mark.host
CTX = RequestContext(ip="192.0.2.30", request_id="req-full-disk")


@pytest.fixture
def tiny_path():
    """A 1 MiB tmpfs as an LXC path; unmounted (and removed) afterwards."""
    path = tempfile.mkdtemp(prefix="console-test-full-", dir="/var/tmp")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", path], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=False)
        os.rmdir(path)


def test_a_full_disk_fails_the_create_with_the_reason_and_leaves_nothing(admin, start_agent, tiny_path):
    agent = start_agent(lxc_path=tiny_path)
    host = agent.wait_registered()
    name = f"full-{uuid.uuid4().hex[:6]}"
    op = wait_terminal(services.create_container(actor=admin, ctx=CTX, host=host, name=name), timeout=120)
    assert op.status == "failed", op.log
    assert "No space left on device" in op.log, op.log
    # The reason is in the operation's error, not only in its log: the template's own words.
    assert op.error.startswith(f"lxc-create could not create {name!r}: cp: error writing "), op.error
    assert op.error.endswith("No space left on device"), op.error
    # Nothing half-made: no directory, no inventory row; the tmpfs is empty again.
    assert not os.path.exists(os.path.join(tiny_path, name)), os.listdir(tiny_path)
    assert not Container.objects.filter(host=host, name=name).exists()
    assert os.listdir(tiny_path) == []
    # The lock is released: the same name can be queued again at once.
    again = services.create_container(actor=admin, ctx=CTX, host=host, name=name)
    assert again.status in ("pending", "running", "failed", "succeeded")
    wait_terminal(again, timeout=120)
    assert Operation.objects.filter(target__endswith=name, status="failed").count() == 2


def test_a_full_copy_onto_a_full_disk_fails_and_leaves_nothing(admin, start_agent, tiny_path):
    agent = start_agent()
    host = agent.wait_registered()
    host.extra_lxc_paths = [tiny_path]
    host.save(update_fields=["extra_lxc_paths"])
    name = f"src-{uuid.uuid4().hex[:6]}"
    assert (
        wait_terminal(services.create_container(actor=admin, ctx=CTX, host=host, name=name)).status
        == "succeeded"
    )
    source = Container.objects.get(host=host, name=name)
    op = wait_terminal(
        services.copy_container(
            actor=admin,
            ctx=CTX,
            container=source,
            new_name=f"{name}-c",
            snapshot=False,
            new_lxc_path=tiny_path,
        ),
        timeout=120,
    )
    assert op.status == "failed" and "No space left on device" in op.error, op.error
    assert os.listdir(tiny_path) == [] and not Container.objects.filter(host=host, name=f"{name}-c").exists()
    assert os.path.isfile(os.path.join(agent.lxc_path, name, "config")), "the source was harmed"
