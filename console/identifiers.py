"""Names and addresses that reach argv or a host's configuration: containers and libvirt
domains, network interfaces, MAC addresses (used by containers and networks alike)."""

from __future__ import annotations

import re
import secrets

from console.errors import InvalidInput

# LXC's own rule plus ours: 1-63 characters, letters, digits, "-", "_", ".",
# not starting with "-" (it would read as an option) or "." (hidden, "..").
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}")
MAC_PREFIXES = ("00:16:3e", "52:54:00")
_MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
# Linux interface names: 1-15 characters, no "/", ":" or whitespace; ours are stricter.
_IFNAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")


def validate_container_name(value: object) -> str:
    if not isinstance(value, str) or value == "":
        raise InvalidInput("a container name is required", field="name")
    if len(value) > 63:
        raise InvalidInput(
            f"container names are at most 63 characters (this one has {len(value)})", field="name"
        )
    if value[0] in "-.":
        raise InvalidInput("container names must not start with '-' or '.'", field="name")
    if not _NAME_RE.fullmatch(value):
        raise InvalidInput("container names may contain only letters, digits, '-', '_' and '.'", field="name")
    return value


def validate_ifname(value: object, field_name: str, what: str) -> str:
    if not isinstance(value, str) or not _IFNAME_RE.fullmatch(value):
        raise InvalidInput(
            f"{what} must be 1-15 letters, digits, '-', '_' or '.', not starting with '-' or '.'",
            field=field_name,
        )
    return value


def generate_mac(prefix: str = MAC_PREFIXES[0]) -> str:
    return prefix + "".join(f":{b:02x}" for b in secrets.token_bytes(3))


def validate_mac(value: object) -> str:
    """A unicast, non-zero MAC written as six ``xx:`` pairs; returned lowercase."""
    if not isinstance(value, str):
        raise InvalidInput("the MAC address must look like 00:16:3e:12:34:56", field="mac")
    mac = value.strip().lower()
    if not _MAC_RE.fullmatch(mac):
        raise InvalidInput("the MAC address must look like 00:16:3e:12:34:56", field="mac")
    if int(mac[:2], 16) & 1:
        raise InvalidInput("that is a multicast MAC address; a container needs a unicast one", field="mac")
    if mac == "00:00:00:00:00:00":
        raise InvalidInput("the all-zero MAC address is not usable", field="mac")
    return mac
