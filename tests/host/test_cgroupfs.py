"""The figures the agent reads from cgroup and /proc files are lxc-info's and lxc-cgroup's own,
to the byte, on a real running container; and the usage refresh runs no lxc-* process."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from console.models import Host
from console.runner import Runner
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


class CountingRunner(Runner):
    """A real runner that also keeps every argv it ran."""

    def __init__(self) -> None:
        super().__init__(None)
        self.argvs: list[list[str]] = []

    def run(self, argv, *args, **kwargs):
        self.argvs.append(list(argv))
        return super().run(argv, *args, **kwargs)


def _lxc_info_view(path: str, name: str) -> tuple:
    info = parse_info(lxc("lxc-info", "-P", path, "-n", name, "-H"))
    return (info.state, info.pid if info.state != "STOPPED" else None, cgroupfs.ordered(info.ips))


def test_the_sync_reads_states_pids_and_addresses_as_lxc_info_without_a_process_per_container(running, host):
    """The periodic sync lists states with two plain lxc-ls (no `lxc-ls -f`, which forks three
    processes per container); a running container's pid is kept while it is still its init, its
    freezer state and addresses are read from cgroup and /proc files; what it stores equals
    lxc-info's view. A container
    restarted behind the console's back (its pid gone) is asked with lxc-info."""
    path, name = running
    for other, freeze in (("cg2", True), ("cg3", False)):
        create = ["lxc-create", "-P", path, "-n", other, "-t", "busybox"]
        subprocess.run(create, check=True, capture_output=True)
        with open(f"{path}/{other}/config", "a") as f:
            f.write("lxc.apparmor.profile = unconfined\n")
        if freeze:
            subprocess.run(["lxc-start", "-P", path, "-n", other], check=True, capture_output=True)
            subprocess.run(["lxc-freeze", "-P", path, "-n", other], check=True, capture_output=True)
    attach = ["lxc-attach", "-P", path, "-n", name, "--", "ip"]
    for argv in (
        [*attach, "addr", "add", "192.0.2.200/24", "dev", "eth0"],
        [*attach, "addr", "add", "192.0.2.7/24", "dev", "eth0"],
        [*attach, "-6", "addr", "add", "2001:db8::5/64", "dev", "eth0"],
    ):
        subprocess.run(argv, check=True, capture_output=True, timeout=30)
    sync_lxc_path(host, path)  # no pids known yet: lxc-info for each running one
    runner = CountingRunner()
    views: dict[str, tuple] = {}
    for _ in range(40):  # the addresses settle (IPv6 duplicate detection, DHCP): compare when still
        before = {n: _lxc_info_view(path, n) for n in (name, "cg2", "cg3")}
        runner.argvs.clear()
        sync_lxc_path(host, path, runner)
        views = {c.name: (c.state, c.pid, c.ips) for c in Container.objects.filter(host=host, lxc_path=path)}
        if before == {n: _lxc_info_view(path, n) for n in before}:
            break
        time.sleep(0.25)
    assert views == before, (views, before)
    assert views[name][0] == "RUNNING" and views["cg2"][0] == "FROZEN"
    assert views["cg3"] == ("STOPPED", None, [])
    assert {"192.0.2.7", "192.0.2.200", "2001:db8::5"} <= set(views[name][2])
    assert views[name][2].index("192.0.2.7") < views[name][2].index("192.0.2.200")
    tools = [argv[0] for argv in runner.argvs]
    assert tools == ["lxc-ls", "lxc-ls"], runner.argvs

    # Another process of the container is not its init; nor is the init of another container.
    helper = subprocess.Popen(["lxc-attach", "-P", path, "-n", name, "--", "sleep", "30"])
    try:
        init = views[name][1]
        procs: set[int] = set()
        for _ in range(40):
            dirs = cgroupfs.container_dirs(init, name) or {}
            procs = {
                int(p) for d in dirs.values() for p in open(os.path.join(d, "cgroup.procs")).read().split()
            } - {init}
            if procs:
                break
            time.sleep(0.1)
        assert procs, "the helper never showed in the container's cgroup"
        assert cgroupfs.is_init(init, name) and cgroupfs.is_init(init, name, lxc_path=path)
        assert not cgroupfs.is_init(init, name, lxc_path=f"{path}-other")  # another path's monitor
        assert not any(cgroupfs.is_init(pid, name) for pid in procs)
        assert not cgroupfs.is_init(views["cg2"][1], name)
    finally:
        helper.kill()
        helper.wait(10)

    # Restarted outside the console: the known pid is gone, lxc-info gives the new one.
    subprocess.run(["lxc-stop", "-P", path, "-n", name, "-k"], check=True, capture_output=True, timeout=60)
    subprocess.run(["lxc-start", "-P", path, "-n", name], check=True, capture_output=True, timeout=60)
    runner.argvs.clear()
    sync_lxc_path(host, path, runner)
    row = Container.objects.get(host=host, lxc_path=path, name=name)
    assert row.state == "RUNNING" and row.pid != init and row.pid == _lxc_info_view(path, name)[1]
    assert [argv[0] for argv in runner.argvs].count("lxc-info") == 1, runner.argvs
