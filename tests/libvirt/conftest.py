"""libvirt tests: the host fixtures (Redis, real agents) plus clean-up of what the tests define."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from tests.host.conftest import *  # noqa: F403
from tests.hosttools import require_root, require_tool, virsh

# Every domain and network a test defines starts with this; teardown removes only those.
PREFIX = "ctlv"


@pytest.fixture
def unique() -> str:
    return f"{PREFIX}{uuid.uuid4().hex[:6]}"


@pytest.fixture
def libvirt_env(libvirt_cleanup):
    """Root, the tools and a reachable ``lxc:///`` (a test fails, never skips, without them)."""
    require_root()
    require_tool("virsh", "losetup", "lxc-create", "truncate")
    probe = virsh("uri")
    if probe.returncode != 0:
        pytest.fail(f"libvirtd is not reachable at lxc:/// (scripts/prepare-host starts it): {probe.stderr}")


@pytest.fixture
def libvirt_cleanup():
    """Destroy and undefine every domain and network named with the test prefix, even on failure."""
    yield
    for name in virsh("list", "--all", "--name").stdout.split():
        if name.startswith(PREFIX):
            virsh("destroy", name)
            virsh("undefine", name)
    for name in virsh("net-list", "--all", "--name").stdout.split():
        if name.startswith(PREFIX):
            virsh("net-destroy", name)
            virsh("net-undefine", name)


@pytest.fixture
def loop_device(tmp_path):
    """A small loop device; always detached again (there are only 8 loop nodes)."""
    image = tmp_path / "disk.img"
    subprocess.run(["truncate", "-s", "16M", str(image)], check=True)
    device = subprocess.run(
        ["losetup", "--find", "--show", str(image)], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "-d", device], capture_output=True, timeout=30)
