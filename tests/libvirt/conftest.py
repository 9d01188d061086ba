"""libvirt tests: the host fixtures (Redis, real agents) plus clean-up of what the tests define."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from tests.host.conftest import *  # noqa: F403

# Every domain and network a test defines starts with this; teardown removes only those.
PREFIX = "ctlv"


@pytest.fixture
def unique() -> str:
    return f"{PREFIX}{uuid.uuid4().hex[:6]}"


def _virsh(*words: str) -> subprocess.CompletedProcess:
    return subprocess.run(["virsh", "-c", "lxc:///", *words], capture_output=True, text=True, timeout=60)


@pytest.fixture
def libvirt_cleanup():
    """Destroy and undefine every domain and network named with the test prefix, even on failure."""
    yield
    for name in _virsh("list", "--all", "--name").stdout.split():
        if name.startswith(PREFIX):
            _virsh("destroy", name)
            _virsh("undefine", name)
    for name in _virsh("net-list", "--all", "--name").stdout.split():
        if name.startswith(PREFIX):
            _virsh("net-destroy", name)
            _virsh("net-undefine", name)


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
