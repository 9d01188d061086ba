"""Validation of LXC config keys and whole config files edited from the browser."""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from console.errors import InvalidInput

KEY_RE = re.compile(r"^lxc(\.[a-z0-9_-]+)+$")
_GROUP_RE = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
_BRIDGE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_MAC_RE = re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$|^([0-9a-fA-Fx]{2}:){5}[0-9a-fA-Fx]{2}$")
_SIGNALS = {
    "SIGPWR",
    "SIGTERM",
    "SIGINT",
    "SIGUSR1",
    "SIGUSR2",
    "SIGHUP",
    "SIGQUIT",
    "SIGRTMIN+3",
    "SIGRTMIN+4",
}
MAX_CONFIG_BYTES = 256 * 1024


def _int_range(lo: int, hi: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not re.fullmatch(r"-?\d{1,9}", value) or not lo <= int(value) <= hi:
            raise InvalidInput(f"must be a whole number from {lo} to {hi}")
        return str(int(value))

    return check


def _bool01(value: str) -> str:
    if value not in ("0", "1"):
        raise InvalidInput("must be 0 or 1")
    return value


def _groups(value: str) -> str:
    groups = [g.strip() for g in value.split(",") if g.strip()]
    for g in groups:
        if not _GROUP_RE.match(g):
            raise InvalidInput(f"{g!r} is not a valid group name (letters, digits, '-', '_', '.')")
    return ",".join(groups)


def _bridge(value: str) -> str:
    if not _BRIDGE_RE.match(value):
        raise InvalidInput("must be an interface name of at most 15 letters, digits, '-', '_', '.'")
    return value


def _mac(value: str) -> str:
    if not _MAC_RE.match(value):
        raise InvalidInput("must be a MAC address like 00:16:3e:xx:xx:xx")
    return value.lower()


def _signal(value: str) -> str:
    if value.upper() not in _SIGNALS and not re.fullmatch(r"\d{1,2}", value):
        raise InvalidInput(f"must be a signal name ({', '.join(sorted(_SIGNALS))}) or number")
    return value.upper()


def _profile(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_./-]{1,100}", value):
        raise InvalidInput("must be an AppArmor profile name such as unconfined")
    return value


@dataclass(frozen=True)
class EditableKey:
    key: str
    label: str
    check: Callable[[str], str]
    help: str = ""


EDITABLE_KEYS: list[EditableKey] = [
    EditableKey("lxc.start.auto", "Start at boot", _bool01, "1: started by lxc-autostart"),
    EditableKey("lxc.start.delay", "Start delay, seconds", _int_range(0, 3600)),
    EditableKey("lxc.start.order", "Start order", _int_range(-1000, 1000), "higher starts first"),
    EditableKey("lxc.group", "Autostart groups", _groups, "comma-separated, e.g. web,db"),
    EditableKey("lxc.net.0.link", "Bridge of the first interface", _bridge),
    EditableKey("lxc.net.0.hwaddr", "MAC of the first interface", _mac),
    EditableKey("lxc.tty.max", "Number of ttys", _int_range(0, 64)),
    EditableKey("lxc.signal.halt", "Halt signal", _signal, "sent by lxc-stop"),
    EditableKey(
        "lxc.apparmor.profile", "AppArmor profile", _profile, "this host has no AppArmor: unconfined"
    ),
]
EDITABLE = {k.key: k for k in EDITABLE_KEYS}


def validate_key_value(key: str, value: str) -> str:
    """Validate one editable key's new value; return it normalised."""
    spec = EDITABLE.get(key)
    if spec is None:
        raise InvalidInput(f"{key!r} cannot be edited here (use the raw editor as an administrator)")
    if not isinstance(value, str) or "\n" in value or "\r" in value or "\x00" in value:
        raise InvalidInput(f"{key}: the value must be a single line", field=key)
    value = value.strip()
    try:
        return spec.check(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{key}: {exc.message}", field=key) from None


def validate_config_text(text: str) -> str:
    """A whole config file: every line blank, a comment, or ``lxc.key = value``."""
    if not isinstance(text, str):
        raise InvalidInput("the configuration must be text")
    if "\x00" in text:
        raise InvalidInput("the configuration must not contain NUL characters")
    if len(text.encode()) > MAX_CONFIG_BYTES:
        raise InvalidInput(f"the configuration is larger than {MAX_CONFIG_BYTES // 1024} KiB")
    lines = text.replace("\r\n", "\n").split("\n")
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, _value = stripped.partition("=")
        if not sep:
            raise InvalidInput(f"line {number}: expected 'lxc.key = value', got {stripped[:60]!r}")
        if not KEY_RE.match(key.strip()):
            raise InvalidInput(f"line {number}: {key.strip()[:60]!r} is not an LXC configuration key")
    if not any(line.strip().startswith("lxc.rootfs.path") for line in lines):
        raise InvalidInput("the configuration must keep its lxc.rootfs.path line")
    normal = "\n".join(lines).rstrip("\n") + "\n"
    return normal


def config_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def unified_diff(old: str, new: str, name: str = "config") -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), f"{name} (current)", f"{name} (new)"
        )
    )


def current_values(config_text: str) -> dict[str, str]:
    """The last value of each editable key in a config file (groups joined)."""
    values: dict[str, str] = {}
    groups: list[str] = []
    for raw in config_text.splitlines():
        key, sep, value = raw.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key.startswith("#"):
            continue
        if key == "lxc.group":
            groups.extend(g for g in value.split(",") if g)
        elif key in EDITABLE:
            values[key] = value
    if groups:
        values["lxc.group"] = ",".join(groups)
    return values
