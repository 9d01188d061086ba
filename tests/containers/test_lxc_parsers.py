"""Parsing what the lxc-* tools print, and editing config files, on real samples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from console.errors import InvalidInput
from console.runner import CommandError, Runner
from containers.drivers import cgroupfs
from containers.drivers.lxc import (
    LxcDriver,
    first_error_in_log,
    parse_info,
)
from containers.lxc_config import ContainerConfig, parse_config
from tests.scripted_runner import ScriptedRunner

# --- lxc-info -H --------------------------------------------------------------------------------

# Captured on this machine from a running busybox container.
INFO_RUNNING = """\
Name:           t1
State:          RUNNING
PID:            8377
CPU use:        6786863
BlkIO use:      0
Memory use:     1470464
KMem use:       786432
Link:           vethrlUHAA
 TX bytes:      0
 RX bytes:      90
 Total bytes:   90
"""

INFO_TWO_IPS = """\
Name:           web1
State:          RUNNING
PID:            9120
IP:             10.0.3.48
IP:             fd42:7a1c:1b2d::48
CPU use:        120000
Memory use:     2048
Link:           vethAbCd12
 TX bytes:      1
 RX bytes:      2
 Total bytes:   3
"""

INFO_STOPPED = """\
Name:           t1
State:          STOPPED
"""


def test_parse_info_of_a_running_container():
    info = parse_info(INFO_RUNNING)
    assert info.name == "t1"
    assert info.state == "RUNNING"
    assert info.pid == 8377
    assert info.ips == []
    assert info.usage == {
        "cpu_ns": 6786863,
        "blkio_bytes": 0,
        "memory_bytes": 1470464,
        "kmem_bytes": 786432,
        "link": "vethrlUHAA",
        "tx_bytes": 0,
        "rx_bytes": 90,
        "total_bytes": 90,
    }


def test_parse_info_keeps_every_ip_line_in_order_ipv6_included():
    info = parse_info(INFO_TWO_IPS)
    assert info.ips == ["10.0.3.48", "fd42:7a1c:1b2d::48"]
    assert info.pid == 9120
    assert info.usage["link"] == "vethAbCd12"
    assert info.usage["total_bytes"] == 3


def test_parse_info_of_a_stopped_container():
    info = parse_info(INFO_STOPPED)
    assert (info.name, info.state, info.pid, info.ips, info.usage) == ("t1", "STOPPED", None, [], {})


def test_parse_info_drops_human_readable_figures_and_unknown_keys():
    info = parse_info("Name: t1\nState: RUNNING\nCPU use: 6.79 seconds\nMemory use: 1.40 MiB\nFoo: bar\n")
    assert info.usage == {}
    assert info.state == "RUNNING"


def test_parse_info_of_nothing():
    info = parse_info("")
    assert (info.name, info.state, info.pid, info.ips) == ("", "UNKNOWN", None, [])


# --- addresses ---------------------------------------------------------------------------------


def test_addresses_are_put_in_one_order_whoever_read_them():
    """lxc-info lists a container's addresses per interface as they were added; the sync reads
    them by value (cgroupfs.addresses): both are stored in this order, or each sync would
    rewrite the row."""
    read = ["10.0.3.200", "fd00::5", "10.0.3.7", "not-an-address", "2001:db8::1", "9.9.9.9"]
    expected = ["9.9.9.9", "10.0.3.7", "10.0.3.200", "2001:db8::1", "fd00::5", "not-an-address"]
    assert cgroupfs.ordered(read) == expected


@pytest.mark.parametrize(
    ("files", "state"),
    [
        ({"freezer.state": "FROZEN\n"}, "FROZEN"),
        ({"freezer.state": "FREEZING\n"}, "FREEZING"),
        ({"freezer.state": "THAWED\n"}, "RUNNING"),
        ({"freezer.state": ""}, None),
        ({"cgroup.events": "populated 1\nfrozen 1\n"}, "FROZEN"),
        ({"cgroup.events": "populated 1\nfrozen 0\n"}, "RUNNING"),
        ({"cgroup.events": "populated 1\n"}, None),
        ({}, None),
    ],
)
def test_the_freezer_state_of_cgroup_v1_and_v2(tmp_path, files, state):
    """The formats of both hierarchies (this host runs v1; its live reading is compared with
    lxc-info in tests/host/test_cgroupfs.py)."""
    dirs = {}
    for filename, text in files.items():
        where = tmp_path / ("v1" if filename.startswith("freezer") else "v2")
        where.mkdir(exist_ok=True)
        (where / filename).write_text(text)
        dirs["freezer" if filename.startswith("freezer") else cgroupfs.UNIFIED] = str(where)
    assert cgroupfs.freezer_state(dirs) == state


# --- config files -------------------------------------------------------------------------------

CONFIG = """\
# Template used to create this container: /usr/share/lxc/templates/lxc-busybox
# lxc.start.auto = 0
lxc.rootfs.path = dir:/var/lib/lxc/t1/rootfs
lxc.uts.name = t1
lxc.start.auto = 1
lxc.start.delay = 5
lxc.start.order = -3
lxc.group = web
lxc.group = db	backup
lxc.net.0.type = veth
"""


def test_parse_config_reads_the_inventory_keys():
    cfg = parse_config(CONFIG)
    assert cfg == ContainerConfig(
        rootfs="dir:/var/lib/lxc/t1/rootfs",
        store="dir",
        autostart=True,
        start_delay=5,
        start_order=-3,
        groups=["web", "db", "backup"],
    )


@pytest.mark.parametrize(
    ("rootfs", "store"),
    [
        ("dir:/x", "dir"),
        ("btrfs:/x", "btrfs"),
        ("/x", "dir"),
        ("/var/lib/lxc/t1/rootfs", "dir"),
        ("/srv/odd:name/rootfs", "dir"),
        ("overlay:/var/lib/lxc/base/rootfs:/var/lib/lxc/t2/delta0", "overlay"),
        ("lvm:/dev/vg0/t1", "lvm"),
        ("zfs:tank/lxc/t1", "zfs"),
    ],
)
def test_parse_config_store_comes_from_the_rootfs_prefix(rootfs, store):
    cfg = parse_config(f"lxc.rootfs.path = {rootfs}\n")
    assert cfg.rootfs == rootfs
    assert cfg.store == store


def test_parse_config_last_value_wins_and_spacing_does_not_matter():
    cfg = parse_config("lxc.start.auto=1\n  lxc.start.auto =  0  \nlxc.start.delay=2\nlxc.start.delay = 9\n")
    assert cfg.autostart is False
    assert cfg.start_delay == 9


def test_parse_config_splits_one_group_line_on_blanks_like_lxc():
    # LXC's set_config_group splits on " \t" only: a comma is part of the group name.
    assert parse_config("lxc.group = a b\nlxc.group = c,d\n").groups == ["a", "b", "c,d"]


def test_parse_config_empty_group_line_clears_the_groups():
    assert parse_config("lxc.group = a\nlxc.group =\nlxc.group = b\n").groups == ["b"]


def test_parse_config_ignores_comments_and_bad_numbers():
    cfg = parse_config("#lxc.start.auto = 1\nlxc.start.delay = soon\nlxc.start.order = 1.5\nnonsense\n")
    assert cfg == ContainerConfig()


# --- lxc-start logs -----------------------------------------------------------------------------

# Captured on this machine: lxc-start of a container whose bridge does not exist.
START_LOG = """\
lxc-start tbad 20261129041223.832 ERROR    network - ../src/lxc/network.c:netdev_configure_server_veth:711 - No such file or directory - Failed to attach "vethi1dtYk" to bridge "nobr0", bridge interface doesn't exist
lxc-start tbad 20261129041223.854 ERROR    network - ../src/lxc/network.c:lxc_create_network_priv:3427 - No such file or directory - Failed to create network device
lxc-start tbad 20261129041223.854 ERROR    start - ../src/lxc/start.c:lxc_spawn:1840 - Failed to create the network
lxc-start tbad 20261129041223.854 ERROR    lxc_start - ../src/lxc/tools/lxc_start.c:main:306 - The container failed to start
"""  # noqa: E501

CAUSE = (
    'No such file or directory - Failed to attach "vethi1dtYk" to bridge "nobr0", '
    "bridge interface doesn't exist"
)


def test_first_error_in_log_is_the_cause_not_the_consequence():
    assert first_error_in_log(START_LOG) == CAUSE


def test_first_error_in_log_skips_lines_below_error():
    warn = "lxc-start tbad 20261129041223.800 WARN     conf - ../src/lxc/conf.c:x:1 - Just a warning\n"
    assert first_error_in_log(warn + START_LOG) == CAUSE


@pytest.mark.parametrize(
    "text", ["", "no lxc log here\n", "lxc-start t 1.2 WARN     a - b:c:1 - only warned\n"]
)
def test_first_error_in_log_without_error(text):
    assert first_error_in_log(text) == ""


# --- LxcDriver.set_config_value -----------------------------------------------------------------


@pytest.fixture
def driver(tmp_path):
    (tmp_path / "t1").mkdir()
    return LxcDriver(Runner(None), str(tmp_path))


def write_config(driver, text, name="t1"):
    path = Path(driver.lxc_path) / name / "config"
    path.write_text(text)
    return path


def test_set_config_value_replaces_every_earlier_line_of_the_key(driver):
    path = write_config(
        driver, "lxc.group = a\nlxc.uts.name = t1\nlxc.group=b\n# lxc.group = c\nlxc.net.0.type = veth\n"
    )
    driver.set_config_value("t1", "lxc.group", "z")
    assert path.read_text() == "lxc.group = z\nlxc.uts.name = t1\n# lxc.group = c\nlxc.net.0.type = veth\n"
    assert parse_config(path.read_text()).groups == ["z"]


def test_set_config_value_appends_when_absent(driver):
    path = write_config(driver, "lxc.uts.name = t1\nlxc.start.autox = 1\n")
    driver.set_config_value("t1", "lxc.start.auto", "1")
    assert path.read_text() == "lxc.uts.name = t1\nlxc.start.autox = 1\nlxc.start.auto = 1\n"
    assert driver.config("t1").autostart is True


def test_set_config_value_matches_whole_keys_only(driver):
    path = write_config(driver, "lxc.net.0.type = veth\nlxc.net.0.link = lxcbr0\n")
    driver.set_config_value("t1", "lxc.net.0", "x")
    assert path.read_text() == "lxc.net.0.type = veth\nlxc.net.0.link = lxcbr0\nlxc.net.0 = x\n"


def test_set_config_value_leaves_no_temporary_file(driver):
    write_config(driver, "lxc.uts.name = t1\n")
    driver.set_config_value("t1", "lxc.start.auto", "0")
    assert sorted(os.listdir(Path(driver.lxc_path) / "t1")) == ["config"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("lxc.start.auto\nlxc.hook.pre-start", "/tmp/evil"),
        ("lxc.start auto", "1"),
        ("lxc.start.auto ", "1"),
        (" lxc.start.auto", "1"),
        ("lxc.start.auto=1\nlxc.x", "1"),
        ("start.auto", "1"),
        ("lxc", "1"),
        ("", "1"),
        ("LXC.start.auto", "1"),
        ("lxc.start.auto", "1\nlxc.hook.pre-start = /tmp/evil"),
        ("lxc.start.auto", "\n"),
    ],
)
def test_set_config_value_refuses_bad_keys_and_values(driver, key, value):
    path = write_config(driver, "lxc.uts.name = t1\n")
    with pytest.raises(ValueError):
        driver.set_config_value("t1", key, value)
    assert path.read_text() == "lxc.uts.name = t1\n"


@pytest.mark.parametrize("separator", ["\r", "\r\n"])
def test_set_config_value_refuses_a_carriage_return_in_the_value(driver, separator):
    path = write_config(driver, "lxc.uts.name = t1\n")
    with pytest.raises(ValueError):
        driver.set_config_value("t1", "lxc.uts.name", f"t1{separator}lxc.hook.pre-start = /tmp/evil")
    assert path.read_text() == "lxc.uts.name = t1\n"


@pytest.mark.parametrize("separator", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_set_config_value_cannot_inject_a_line_with_other_line_separators(driver, separator):
    path = write_config(driver, "lxc.uts.name = t1\n")
    try:
        driver.set_config_value("t1", "lxc.uts.name", f"t1{separator}lxc.hook.pre-start = /tmp/evil")
    except ValueError:
        return  # refused: fine
    driver.set_config_value("t1", "lxc.start.auto", "1")  # any later edit re-reads the file
    lines = path.read_text().split("\n")
    assert "lxc.hook.pre-start = /tmp/evil" not in lines


def test_set_config_value_writes_one_line_per_group(driver):
    path = write_config(driver, "lxc.group = old\nlxc.uts.name = t1\nlxc.group = older\n")
    driver.set_config_value("t1", "lxc.group", "web,db")
    assert path.read_text() == "lxc.group = web\nlxc.group = db\nlxc.uts.name = t1\n"
    assert parse_config(path.read_text()).groups == ["web", "db"]
    driver.set_config_value("t1", "lxc.group", "")
    assert parse_config(path.read_text()).groups == []


def test_set_config_value_keeps_the_file_mode(driver):
    path = write_config(driver, "lxc.uts.name = t1\n")
    path.chmod(0o640)
    driver.set_config_value("t1", "lxc.start.auto", "1")
    assert path.stat().st_mode & 0o7777 == 0o640


def test_set_config_value_refuses_a_bad_container_name(driver):
    with pytest.raises(InvalidInput):
        driver.set_config_value("../t1", "lxc.start.auto", "1")


# --- LxcDriver with a scripted runner -----------------------------------------------------------


def test_driver_refuses_a_relative_lxc_path():
    with pytest.raises(ValueError):
        LxcDriver(ScriptedRunner(), "var/lib/lxc")


@pytest.mark.parametrize("method", ["start", "stop", "kill", "destroy", "info", "state"])
def test_driver_validates_the_name_before_running_anything(tmp_path, method):
    runner = ScriptedRunner()
    with pytest.raises(InvalidInput):
        getattr(LxcDriver(runner, str(tmp_path)), method)("-rf")
    assert runner.argvs == []


def test_create_refuses_an_existing_container(tmp_path):
    (tmp_path / "web1").mkdir()
    (tmp_path / "web1" / "config").write_text("")
    runner = ScriptedRunner()
    with pytest.raises(CommandError, match="already exists"):
        LxcDriver(runner, str(tmp_path)).create("web1", "busybox")
    assert runner.argvs == []


def test_list_of_a_missing_lxc_path_runs_nothing(tmp_path):
    runner = ScriptedRunner()
    assert LxcDriver(runner, str(tmp_path / "missing")).list() == []
    assert runner.argvs == []


def test_config_of_a_container_without_config_file_is_empty(tmp_path):
    assert LxcDriver(ScriptedRunner(), str(tmp_path)).config("ghost") == ContainerConfig()


def test_failure_cause_prefers_what_lxc_ran_over_its_own_cascade():
    from containers.drivers.lxc import failure_cause

    # Recorded from lxc-create -t busybox on a 1 MiB tmpfs (tests/host/test_full_disk.py).
    output = (
        "cp: error writing '/p/full/rootfs/bin/busybox': No space left on device\n"
        "ERROR: Failed to copy busybox binary\n"
        "ERROR: Failed to configure busybox\n"
        "lxc-create: full: ../src/lxc/lxccontainer.c: create_run_template: 1628 Failed to create container "
        "from template\n"
        "lxc-create: full: ../src/lxc/tools/lxc_create.c: main: 317 Failed to create container full\n"
    )
    assert failure_cause(output) == "cp: error writing '/p/full/rootfs/bin/busybox': No space left on device"
    only_lxc = "lxc-create: x: ../src/lxc/tools/lxc_create.c: main: 317 Failed to create container x\n"
    assert failure_cause(only_lxc) == "Failed to create container x"
    assert failure_cause("") == ""


def test_hook_lines_leave_out_the_rest_of_an_error_message():
    from containers.drivers.lxc import hook_lines

    # An lxc-copy DEBUG log onto a full disk (tests/host/test_full_disk.py), shortened, with a
    # clone hook that printed to stdout and stderr before it.
    log = (
        "lxc-copy src 20261129071500.123 DEBUG    utils - ../src/lxc/utils.c:run_buffer:560 - Script "
        "/h/clone produced output: cloning src\n"
        "hook says hi on stderr\n"
        "lxc-copy src 20261129071500.456 ERROR    storage - ../src/lxc/storage/storage.c:storage_copy:511 - "
        'Failed to rsync from "/a" into "/b": rsync: [receiver] write failed on "/b/x": No space left\n'
        "rsync error: error in file IO (code 11) at receiver.c(657) [receiver=3.5.0]\n"
    )
    assert hook_lines(log) == ["cloning src", "hook says hi on stderr"]
