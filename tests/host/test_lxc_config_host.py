"""The console's one config model (containers/lxc_config.py) reads configs as LXC 5 does.

Each config below is written under a private LXC path and read twice: by ``LxcConfig`` and by
LXC itself (``lxc-info -c KEY``, ``lxc-autostart --list [--groups G]``, ``lxc-ls``). No
container is started: these tools only load the config file.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from console.runner import Runner
from containers.drivers.lxc import LxcDriver
from containers.lxc_config import LxcConfig, apply_setting, settings_changes
from containers.models import Container
from tests.hosttools import require_root, require_tool

pytestmark = pytest.mark.host

CONFIGS = {
    "groups-comma": "lxc.group = a,b\nlxc.start.auto = 1\nlxc.start.order = 10\n",
    "groups-blank": "lxc.group = a b\nlxc.start.auto = 1\nlxc.start.order = 5\n",
    "groups-cleared": (
        "lxc.group = a\nlxc.group = b\nlxc.group =\nlxc.group = c\tweb\n"
        "lxc.start.auto = 1\nlxc.start.order = -1\n"
    ),
    "quoted": (
        "# comment = not a key\n"
        '  lxc.mount.entry = "/srv/b mnt/b none rw,bind,create=dir 0 0"\n'
        "lxc.mount.entry = /srv/a mnt/a none ro,bind 0 0\n"
        "lxc.hook.pre-start = /bin/true\n"
        "lxc.hook.pre-start = /bin/echo\n"
        "lxc.hook.start = /x\n"
        "lxc.hook.start =\n"
        "lxc.cgroup.memory.limit_in_bytes = 256M\n"
        "lxc.cgroup.cpuset.cpus = 0\n"
        "lxc.cgroup.memory.limit_in_bytes = 512M\n"
        "lxc.start.auto = 1\n"
        "lxc.start.delay = 3\n"
        "lxc.start.order = 07\n"
    ),
    "no-autostart": "lxc.start.auto = 0\nlxc.group = a\n",
    "default": "lxc.start.auto = 1\n",
}
MULTI_KEYS = ["lxc.group", "lxc.mount.entry", "lxc.hook.pre-start", "lxc.hook.start"]


@pytest.fixture(scope="module")
def lxc_path():
    require_root()
    require_tool("lxc-info", "lxc-autostart", "lxc-ls")
    root = Path(tempfile.mkdtemp(prefix="console-test-config-", dir="/var/tmp"))
    for name, text in CONFIGS.items():
        (root / name).mkdir()
        (root / name / "config").write_text(f"lxc.rootfs.path = dir:{root}/{name}/rootfs\n{text}")
    yield root
    subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=True)


def lxc_info_values(path: Path, name: str, key: str) -> list[str]:
    """What ``lxc-info -c KEY`` prints: ``KEY = v1`` then one more value a line."""
    out = subprocess.run(
        ["lxc-info", "-P", str(path), "-n", name, "-c", key], capture_output=True, text=True, check=True
    ).stdout
    first, *rest = out.rstrip("\n").split("\n")
    head = first.removeprefix(f"{key} =").strip()
    return [v for v in [head, *rest] if v]


def autostart_list(path: Path, *groups: str) -> list[str]:
    argv = ["lxc-autostart", "-P", str(path), "--list"]
    if groups:
        argv += ["--groups", ",".join(groups)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def model(path: Path, name: str) -> LxcConfig:
    return LxcConfig((path / name / "config").read_text())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_multi_valued_keys_read_as_lxc_info_prints_them(lxc_path, name):
    cfg = model(lxc_path, name)
    for key in MULTI_KEYS:
        expected = lxc_info_values(lxc_path, name, key)
        if key == "lxc.group":
            assert cfg.groups == expected, (name, key)
        else:
            assert cfg.get_all(key) == expected, (name, key)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_autostart_keys_and_cgroup_limits_read_as_lxc_does(lxc_path, name):
    cfg = model(lxc_path, name)
    assert str(cfg.start_order) == lxc_info_values(lxc_path, name, "lxc.start.order")[0]
    assert str(cfg.start_delay) == lxc_info_values(lxc_path, name, "lxc.start.delay")[0]
    assert ("1" if cfg.autostart else "0") == lxc_info_values(lxc_path, name, "lxc.start.auto")[0]
    for key, value in cfg.cgroup_limits.items():
        # LXC keeps every line and applies them in order: the last one is what the cgroup gets.
        assert lxc_info_values(lxc_path, name, f"lxc.cgroup.{key}")[-1] == value


def test_a_comma_in_one_group_line_is_one_group_for_lxc_autostart(lxc_path):
    """LXC 5 splits an lxc.group line on blanks only; lxc-autostart --groups splits on commas."""
    assert model(lxc_path, "groups-comma").groups == ["a,b"]
    assert model(lxc_path, "groups-blank").groups == ["a", "b"]
    in_a = autostart_list(lxc_path, "a")
    assert "groups-blank" in in_a and "groups-comma" not in in_a
    assert "groups-comma" not in autostart_list(lxc_path, "a", "b")


def test_autostart_list_matches_the_model_and_the_console_plan(lxc_path, db):
    """The inventory's rows, ordered as the Autostart page orders them, give lxc-autostart's list
    for each group and for the containers without a group (lower lxc.start.order first)."""
    from console.models import Host
    from containers.services import autostart_plan

    host = Host.objects.create(slug="cfg-test", name="cfg-test")
    for name in CONFIGS:
        s = model(lxc_path, name).summary()
        Container.objects.create(
            host=host,
            name=name,
            lxc_path=str(lxc_path),
            autostart=s.autostart,
            start_delay=s.start_delay,
            start_order=s.start_order,
            groups=s.groups,
        )
    assert [c.name for c in autostart_plan(host)] == autostart_list(lxc_path)
    for group in ("a", "b", "c", "web", "a,b", "web,", "nosuch"):
        assert [c.name for c in autostart_plan(host, group)] == autostart_list(lxc_path, group), group
    assert [c.name for c in autostart_plan(host, all_groups=True)] == [
        line.split()[0]
        for line in subprocess.run(
            ["lxc-autostart", "-P", str(lxc_path), "--list", "--all"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    ]


def test_settings_form_groups_become_one_line_each_and_lxc_reads_them(lxc_path):
    """The Settings form's "web,db" is written as two lxc.group lines: two groups for LXC."""
    driver = LxcDriver(Runner(None), str(lxc_path))
    name = "groups-comma"
    old = driver.read_config(name)
    try:
        changes = settings_changes(
            old, {"lxc.group": "web,db", "lxc.start.order": "", "lxc.start.delay": "4"}
        )
        assert changes == {"lxc.group": "web,db", "lxc.start.order": None, "lxc.start.delay": "4"}
        cfg = LxcConfig(old)
        for key, value in changes.items():
            apply_setting(cfg, key, value)
        driver.write_config(name, cfg.text())
        assert lxc_info_values(lxc_path, name, "lxc.group") == ["web", "db"]
        assert lxc_info_values(lxc_path, name, "lxc.start.order") == ["0"]
        assert lxc_info_values(lxc_path, name, "lxc.start.delay") == ["4"]
        assert name in autostart_list(lxc_path, "db")
        assert driver.load_error(name) == ""
    finally:
        driver.write_config(name, old)


def test_a_config_lxc_cannot_load_is_put_back_with_lxc_s_reason(lxc_path):
    driver = LxcDriver(Runner(None), str(lxc_path))
    name = "default"
    old = driver.read_config(name)
    driver.write_config(name, old + "lxc.signal.halt = \u0665\u0665\n")
    with pytest.raises(Exception, match="lxc.signal.halt") as exc:
        driver.keep_if_loads(name, old)
    assert "put back" in str(exc.value)
    assert driver.read_config(name) == old
    assert driver.load_error(name) == ""


def test_a_container_lxc_cannot_load_is_still_listed(lxc_path):
    driver = LxcDriver(Runner(None), str(lxc_path))
    name = "no-autostart"
    old = driver.read_config(name)
    driver.write_config(name, old + "lxc.cgroup.cpuset.cpus = 0\nlxc.signal.halt = \u0665\u0665\n")
    try:
        assert "Failed to parse config" in driver.load_error(name)
        lxc_ls = subprocess.run(
            ["lxc-ls", "-P", str(lxc_path), "-1"], capture_output=True, text=True, check=True
        ).stdout.split()
        assert name not in lxc_ls  # lxc-ls leaves it out...
        listed = {info.name: info.state for info in driver.list()}
        assert listed[name] == "UNKNOWN"  # ...the console keeps it, so its config can be repaired
        assert set(listed) == set(CONFIGS)
    finally:
        driver.write_config(name, old)


class CreatesAfterTheListing(Runner):
    """A real runner; right after the first ``lxc-ls`` it ran, a container appears (as an
    ``lxc-create`` in a shell would make one between the sync's listing and its directory scan)."""

    def __init__(self, path: Path, name: str) -> None:
        super().__init__(None)
        self.path, self.name, self.made = path, name, False

    def run(self, argv, *args, **kwargs):
        result = super().run(argv, *args, **kwargs)
        if argv[0] == "lxc-ls" and not self.made:
            self.made = True
            (self.path / self.name).mkdir()
            (self.path / self.name / "config").write_text(
                f"lxc.rootfs.path = dir:{self.path}/{self.name}/rootfs\n{CONFIGS['default']}"
            )
        return result


def test_a_container_made_after_the_listing_is_not_taken_for_one_lxc_cannot_load(lxc_path):
    """CI caught the sync storing a container an `lxc-create` was making as UNKNOWN (the state
    of a config LXC cannot load): the listing ran just before its config was written, the
    directory scan just after. Such a container is asked with lxc-info and listed STOPPED."""
    name = "late"
    driver = LxcDriver(CreatesAfterTheListing(lxc_path, name), str(lxc_path))
    try:
        listed = {info.name: info.state for info in driver.list()}
        assert driver.runner.made
        assert listed[name] == "STOPPED", listed
        assert set(listed) == {*CONFIGS, name}
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(lxc_path / name)], check=True)


def test_an_unloadable_config_stays_on_the_console_and_is_repaired_from_the_raw_editor(
    lxc_path, admin, client
):
    """Issue 12.5: a container whose config LXC cannot load must not vanish (404): the inventory
    keeps it (UNKNOWN), its pages show, and the raw editor accepts a repaired config."""
    from console.models import Host
    from containers.inventory import sync_lxc_path
    from containers.lxc_config import config_hash

    driver = LxcDriver(Runner(None), str(lxc_path))
    name = "default"
    old = driver.read_config(name)
    broken = old + "lxc.signal.halt = \u0665\u0665\n"
    driver.write_config(name, broken)
    try:
        host = Host.objects.create(slug="cfg-sync", name="cfg-sync", lxc_path=str(lxc_path))
        sync_lxc_path(host, str(lxc_path))
        c = Container.objects.get(host=host, name=name)
        assert c.state == "UNKNOWN" and "\u0665\u0665" in c.config_text
        client.force_login(admin)
        assert client.get(f"/containers/{c.pk}/").status_code == 200
        page = client.get(f"/containers/{c.pk}/config/")
        assert page.status_code == 200 and "\u0665\u0665" in page.content.decode()
        # The raw editor refuses to keep the bad value and accepts the repaired text.
        kept = client.post(
            f"/containers/{c.pk}/config/",
            {"mode": "preview", "text": broken, "base_hash": config_hash(broken)},
        )
        assert kept.status_code == 400 and "lxc.signal.halt" in kept.content.decode()
        fixed = client.post(
            f"/containers/{c.pk}/config/", {"mode": "save", "text": old, "base_hash": config_hash(broken)}
        )
        assert fixed.status_code == 302
    finally:
        driver.write_config(name, old)
