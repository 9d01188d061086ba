"""The one LXC config model: reading, editing that keeps the rest of the file, the Settings checks.

What LXC itself reads from the same files is compared in tests/host/test_lxc_config_host.py.
"""

from __future__ import annotations

import pytest

from console.errors import InvalidInput
from containers.lxc_config import (
    LxcConfig,
    SettingsRefused,
    apply_setting,
    form_values,
    settings_changes,
    validate_config_text,
    validate_key_value,
)

BUSYBOX = """\
# Template used to create this container: /usr/share/lxc/templates/lxc-busybox
lxc.rootfs.path = dir:/var/lib/lxc/b1/rootfs
lxc.signal.halt = SIGUSR1
lxc.signal.reboot = SIGTERM
lxc.uts.name = b1
lxc.tty.max = 1
lxc.pty.max = 1
lxc.cap.drop = sys_module mac_admin mac_override sys_time

# When using LXC with apparmor, uncomment the next line to run unconfined:
#lxc.apparmor.profile = unconfined

lxc.mount.auto = cgroup:mixed proc:mixed sys:mixed
lxc.mount.entry = shm /dev/shm tmpfs defaults 0 0
lxc.mount.entry = mqueue dev/mqueue mqueue rw,relatime,create=dir,optional 0 0
lxc.net.0.type = veth
lxc.net.0.link = lxcbr0
lxc.net.0.flags = up
lxc.apparmor.profile = unconfined
"""


def test_edits_keep_comments_blank_lines_and_order():
    cfg = LxcConfig(BUSYBOX)
    assert cfg.text() == BUSYBOX
    cfg.set("lxc.tty.max", "4").add("lxc.mount.entry", "/srv/a mnt/a none ro,bind 0 0")
    cfg.set("lxc.start.auto", "1")
    assert cfg.remove("lxc.mount.entry", "shm /dev/shm tmpfs defaults 0 0")
    text = cfg.text()
    assert text.splitlines()[:5] == BUSYBOX.splitlines()[:5]
    assert "#lxc.apparmor.profile = unconfined\n" in text
    assert "lxc.tty.max = 4\nlxc.pty.max = 1\n" in text  # in place of the old line
    assert text.endswith("lxc.mount.entry = /srv/a mnt/a none ro,bind 0 0\nlxc.start.auto = 1\n")
    assert "shm /dev/shm" not in text
    assert [e.target for e in LxcConfig(text).mount_entries] == ["dev/mqueue", "mnt/a"]


def test_remove_matches_the_value_as_lxc_reads_it():
    cfg = LxcConfig('lxc.mount.entry = "/srv/a mnt/a none ro,bind 0 0"\nlxc.uts.name = x\n')
    assert cfg.remove("lxc.mount.entry", "/srv/a mnt/a none ro,bind 0 0")
    assert cfg.text() == "lxc.uts.name = x\n"
    assert not cfg.remove("lxc.mount.entry", "/srv/a mnt/a none ro,bind 0 0")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("lxc.start.auto\nlxc.x", "1"),
        ("LXC.x", "1"),
        ("lxc.x", "1\nlxc.hook.pre-start = /tmp/e"),
        ("lxc.x", "\u2028"),
    ],
)
def test_edits_refuse_a_bad_key_or_a_value_that_would_start_a_line(key, value):
    with pytest.raises(ValueError):
        LxcConfig("").set(key, value)
    with pytest.raises(ValueError):
        LxcConfig("").add(key, value)


def test_reading_follows_lxc_rules():
    cfg = LxcConfig(
        "lxc.group = web\nlxc.group = db\tbackup,x\n"
        "lxc.hook.start = /a\nlxc.hook.start =\nlxc.hook.start = /b\nlxc.hook.stop = /c\n"
        "lxc.cgroup.memory.limit_in_bytes = 1G\nlxc.cgroup.devices.allow = a\n"
        "lxc.cgroup.memory.limit_in_bytes = 512M\nlxc.cgroup.cpu.shares =\n"
        "martian = 1\n  # lxc.start.auto = 1\nlxc.start.order = +3\n"
    )
    assert cfg.groups == ["web", "db", "backup,x"]
    assert cfg.hooks == {"start": ["/b"], "stop": ["/c"]}
    assert cfg.cgroup_limits == {"memory.limit_in_bytes": "512M"}
    assert cfg.start_order == 3 and not cfg.autostart


# --- the Settings form --------------------------------------------------------------------------


def test_an_untouched_form_changes_nothing():
    shown = form_values(LxcConfig(BUSYBOX))
    assert shown["lxc.start.auto"] == "0" and shown["lxc.net.0.hwaddr"] == ""
    assert settings_changes(BUSYBOX, shown) == {}


def test_blank_fields_leave_unset_keys_alone_and_remove_set_ones():
    shown = form_values(LxcConfig(BUSYBOX))
    changes = settings_changes(BUSYBOX, {**shown, "lxc.start.auto": "1", "lxc.tty.max": ""})
    assert changes == {"lxc.start.auto": "1", "lxc.tty.max": None}
    cfg = LxcConfig(BUSYBOX)
    for key, value in changes.items():
        apply_setting(cfg, key, value)
    assert cfg.get("lxc.tty.max") is None and cfg.autostart


def test_unchecking_start_at_boot_writes_zero():
    text = BUSYBOX + "lxc.start.auto = 1\n"
    assert settings_changes(text, {"lxc.start.auto": "0"}) == {"lxc.start.auto": "0"}


def test_every_wrong_field_is_reported_at_once():
    with pytest.raises(SettingsRefused) as exc:
        settings_changes(
            BUSYBOX,
            {"lxc.start.delay": "soon", "lxc.start.order": "5", "lxc.net.0.link": "..", "lxc.hook.x": "/t"},
        )
    assert set(exc.value.errors) == {"lxc.start.delay", "lxc.net.0.link", "lxc.hook.x"}


def test_a_value_the_form_would_refuse_is_kept_when_left_untouched():
    text = BUSYBOX.replace("SIGUSR1", "SIGWINCH")
    assert settings_changes(text, form_values(LxcConfig(text))) == {}


def test_groups_with_the_same_meaning_change_nothing():
    text = BUSYBOX + "lxc.group = web\nlxc.group = db\n"
    assert settings_changes(text, {"lxc.group": " web , db "}) == {}
    assert settings_changes(text, {"lxc.group": "db,web"}) == {"lxc.group": "db,web"}


ARABIC_55 = "\u0665\u0665"  # "٥٥": str.isdigit() and int() accept it, LXC does not


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("lxc.signal.halt", ARABIC_55),
        ("lxc.start.delay", ARABIC_55),
        ("lxc.start.order", "-\u0665"),
        ("lxc.tty.max", "\uff11"),  # fullwidth 1
        ("lxc.net.0.link", ".."),
        ("lxc.net.0.link", "-n"),
        ("lxc.net.0.link", "."),
        ("lxc.apparmor.profile", "../etc"),
        ("lxc.apparmor.profile", "a..b"),
        ("lxc.apparmor.profile", "/etc/x"),
        ("lxc.apparmor.profile", "-x"),
        ("lxc.signal.halt", "99"),
    ],
)
def test_the_form_refuses_non_ascii_digits_and_unsafe_names(key, value):
    with pytest.raises(InvalidInput):
        validate_key_value(key, value)


@pytest.mark.parametrize(
    ("key", "value", "normal"),
    [
        ("lxc.apparmor.profile", "unconfined", "unconfined"),
        ("lxc.apparmor.profile", "generated", "generated"),
        ("lxc.apparmor.profile", "unchanged", "unchanged"),
        ("lxc.apparmor.profile", "lxc-container-default-cgns", "lxc-container-default-cgns"),
        ("lxc.net.0.link", "lxcbr0", "lxcbr0"),
        ("lxc.net.0.link", "br_0.10", "br_0.10"),
        ("lxc.signal.halt", "sigpwr", "SIGPWR"),
        ("lxc.signal.halt", "30", "30"),
        ("lxc.start.order", "-05", "-5"),
    ],
)
def test_the_form_accepts_what_lxc_accepts(key, value, normal):
    assert validate_key_value(key, value) == normal


@pytest.mark.parametrize(
    "line",
    [
        f"lxc.signal.halt = {ARABIC_55}",
        "lxc.cgroup.cpuset.cpus = \u0660",
        "lxc.cgroup.memory.limit_in_bytes = \u0665\u0660\u0660M",
        "lxc.start.delay = \u0665",
        "lxc.apparmor.profile = ../etc",
    ],
)
def test_the_raw_editor_refuses_values_lxc_or_the_kernel_cannot_read(line):
    with pytest.raises(InvalidInput, match="line 2"):
        validate_config_text(f"lxc.rootfs.path = dir:/x\n{line}\n")


def test_the_raw_editor_accepts_the_busybox_template_config():
    assert validate_config_text(BUSYBOX) == BUSYBOX
