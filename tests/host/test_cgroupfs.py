"""The figures the agent reads from cgroup and /proc files are lxc-info's and lxc-cgroup's own,
to the byte, on a real running container; and the usage refresh runs no lxc-* process."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from console.models import Host
from containers.drivers import cgroupfs
from containers.drivers.lxc import parse_info
from containers.inventory import refresh_running, sync_lxc_path
from containers.limits import SHOWN_KEYS
from containers.models import Container
from tests.host.conftest import destroy_all_containers

pytestmark = pytest.mark.host


@pytest.fixture
def running(lxc_root):
    path = str(lxc_root / f"cg-{uuid.uuid4().hex[:6]}")
    os.makedirs(path)
    name = "cg1"
    subprocess.run(["lxc-create", "-P", path, "-n", name, "-t", "busybox"], check=True, capture_output=True)
    with open(f"{path}/{name}/config", "a") as f:
        f.write("lxc.apparmor.profile = unconfined\n")
    subprocess.run(["lxc-start", "-P", path, "-n", name], check=True, capture_output=True)
    yield path, name
    destroy_all_containers(path)


def lxc(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout


def test_usage_and_values_match_lxc_info_and_lxc_cgroup(running):
    path, name = running
    pid = int(lxc("lxc-info", "-P", path, "-n", name, "-p", "-H"))
    # The container is still booting (its DHCP client runs): figures move. Compare at an instant
    # when ours did not change across lxc-info's own read; then they must be equal.
    compared = None
    for _ in range(40):
        before = cgroupfs.usage(pid, name)
        theirs = parse_info(lxc("lxc-info", "-P", path, "-n", name, "-H")).usage
        after = cgroupfs.usage(pid, name)
        if before is not None and before == after:
            theirs.pop("link", None)
            compared = (before, theirs)
            break
        time.sleep(0.25)
    assert compared is not None, "the figures never held still for one lxc-info"
    assert compared[0] == compared[1]
    assert set(compared[0]) >= {
        "cpu_ns",
        "memory_bytes",
        "blkio_bytes",
        "tx_bytes",
        "rx_bytes",
        "total_bytes",
    }
    for key in SHOWN_KEYS:
        tool = subprocess.run(["lxc-cgroup", "-P", path, "-n", name, key], capture_output=True, text=True)
        expected = tool.stdout.strip() if tool.returncode == 0 else None
        assert cgroupfs.cgroup_value(pid, name, key) == expected, key
    # Another container's name, or a pid that is not the container's, reads nothing.
    assert cgroupfs.usage(pid, "someone-else") is None
    assert cgroupfs.usage(os.getpid(), name) is None
    assert cgroupfs.cgroup_value(pid, name, "../memory.limit_in_bytes") is None


def test_the_usage_refresh_reads_files_not_tools(running, host: Host, tmp_path):
    path, name = running
    sync_lxc_path(host, path)
    row = Container.objects.get(host=host, name=name)
    assert row.state == "RUNNING" and row.pid
    Container.objects.filter(pk=row.pk).update(usage={})
    # No lxc-* tool can be found: a refresh that started one would fail and count nothing.
    saved = os.environ["PATH"]
    os.environ["PATH"] = str(tmp_path)
    try:
        assert refresh_running(host) == 1
    finally:
        os.environ["PATH"] = saved
    row.refresh_from_db()
    assert row.usage["cpu_ns"] > 0 and row.usage["memory_bytes"] > 0


def test_a_container_whose_name_another_lxc_path_holds_is_read_from_its_files(running, lxc_root, tmp_path):
    """LXC names the cgroup of a second container of the same name (another LXC path)
    lxc.payload.NAME-1: its figures are still read from the files, and they are its own."""
    path, name = running
    other = str(lxc_root / f"cg-{uuid.uuid4().hex[:6]}")
    os.makedirs(other)
    try:
        create = ["lxc-create", "-P", other, "-n", name, "-t", "busybox"]
        subprocess.run(create, check=True, capture_output=True)
        with open(f"{other}/{name}/config", "a") as f:
            f.write("lxc.apparmor.profile = unconfined\nlxc.cgroup.memory.limit_in_bytes = 123M\n")
        subprocess.run(["lxc-start", "-P", other, "-n", name], check=True, capture_output=True)
        pid = int(lxc("lxc-info", "-P", other, "-n", name, "-p", "-H"))
        with open(f"/proc/{pid}/cgroup") as f:
            assert f"lxc.payload.{name}-" in f.read()  # the situation under test
        dirs = cgroupfs.container_dirs(pid, name)
        assert dirs is not None
        assert cgroupfs.cgroup_value(pid, name, "memory.limit_in_bytes", dirs) == str(123 * 1024 * 1024)
        first = int(lxc("lxc-info", "-P", path, "-n", name, "-p", "-H"))
        assert cgroupfs.cgroup_value(first, name, "memory.limit_in_bytes") != str(123 * 1024 * 1024)
        usage = cgroupfs.usage(pid, name)
        assert usage is not None and usage["memory_bytes"] > 0
        # A suffix that is not LXC's (a number), or another name's, is still refused.
        assert cgroupfs.container_dirs(pid, f"{name}x") is None
        assert cgroupfs._suffixed(f"lxc.payload.{name}-1", f"lxc.payload.{name}")
        assert not cgroupfs._suffixed(f"lxc.payload.{name}-1x", f"lxc.payload.{name}")
        assert not cgroupfs._suffixed(f"lxc.payload.{name}x-1", f"lxc.payload.{name}")
        assert not cgroupfs._suffixed(f"lxc.payload.{name}-", f"lxc.payload.{name}")
    finally:
        destroy_all_containers(other)
