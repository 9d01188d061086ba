"""libvirt network XML: validated values in (``ipaddress`` for every address), real XML out."""

from __future__ import annotations

import ipaddress
import re
import xml.etree.ElementTree as ET  # building only; untrusted text goes through safe_parse
from dataclasses import dataclass, field

from console.errors import InvalidInput
from console.identifiers import validate_container_name, validate_ifname, validate_mac
from console.safe_xml import safe_parse, to_text
from networks.choices import ForwardMode


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    bridge: str
    forward_mode: str
    address: str
    netmask: str
    dhcp_start: str = ""
    dhcp_end: str = ""

    @property
    def interface(self) -> ipaddress.IPv4Interface:
        return ipaddress.IPv4Interface(f"{self.address}/{self.netmask}")


def validate_network_name(value: object) -> str:
    try:
        return validate_container_name(value)
    except InvalidInput as exc:
        raise InvalidInput(exc.message.replace("container", "network"), field="name") from None


def _ipv4(value: object, field_name: str, what: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(str(value).strip())
    except ValueError:
        raise InvalidInput(
            f"{what} must be an IPv4 address such as 192.168.250.1", field=field_name
        ) from None


def validate_network_spec(
    *,
    name: object,
    bridge: object,
    forward_mode: object,
    address: object,
    netmask: object,
    dhcp_start: object = "",
    dhcp_end: object = "",
    taken_subnets: dict[str, ipaddress.IPv4Network] | None = None,
) -> NetworkSpec:
    """Everything checkable without the host (the bridge's absence is checked by the agent too)."""
    name = validate_network_name(name)
    bridge = validate_ifname(bridge, "bridge", "the bridge name")
    if forward_mode not in ForwardMode.values:
        raise InvalidInput(
            f"forward mode must be one of {', '.join(ForwardMode.values)}", field="forward_mode"
        )
    addr = _ipv4(address, "address", "the address")
    try:
        mask = ipaddress.IPv4Network(f"0.0.0.0/{str(netmask).strip()}").netmask
    except ValueError:
        raise InvalidInput("the netmask must look like 255.255.255.0 (or a prefix length such as 24)",
                           field="netmask") from None  # fmt: skip
    iface = ipaddress.IPv4Interface(f"{addr}/{mask}")
    net = iface.network
    if net.prefixlen > 30:
        raise InvalidInput("the subnet is too small: use a netmask of /30 or wider", field="netmask")
    if addr in (net.network_address, net.broadcast_address):
        raise InvalidInput(f"{addr} is the network or broadcast address of {net}; choose a host address",
                           field="address")  # fmt: skip
    if addr.is_loopback or addr.is_multicast or addr.is_unspecified or addr.is_link_local:
        raise InvalidInput(f"{addr} cannot be a network's address", field="address")
    for other, subnet in (taken_subnets or {}).items():
        if net.overlaps(subnet):
            raise InvalidInput(f"{net} overlaps the subnet {subnet} of {other}", field="address")
    start = end = ""
    if str(dhcp_start or "").strip() or str(dhcp_end or "").strip():
        first = _ipv4(dhcp_start, "dhcp_start", "the first DHCP address")
        last = _ipv4(dhcp_end, "dhcp_end", "the last DHCP address")
        hosts = (net.network_address, net.broadcast_address)
        for value, fname in ((first, "dhcp_start"), (last, "dhcp_end")):
            if value not in net or value in hosts:
                raise InvalidInput(f"the DHCP range must lie inside {net} (hosts only): {value} does not",
                                   field=fname)  # fmt: skip
        if int(first) > int(last):
            raise InvalidInput("the DHCP range starts after it ends", field="dhcp_end")
        if int(first) <= int(addr) <= int(last):
            raise InvalidInput(
                f"the DHCP range includes the network's own address {addr}", field="dhcp_start"
            )
        start, end = str(first), str(last)
    return NetworkSpec(name, bridge, str(forward_mode), str(addr), str(mask), start, end)


_HOSTNAME_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def validate_reservation(info: NetworkInfo, mac: str, ip: str, name: str) -> dict[str, str]:
    """A DHCP host entry for the network: a unicast MAC, an address of its subnet that is not the
    network's own, an optional host name; none of them reserved already."""
    mac = validate_mac(mac)
    address = _ipv4(ip, "ip", "the reserved address")
    subnet = info.subnet
    if subnet is None or not info.has_dhcp:
        raise InvalidInput("this network has no IPv4 DHCP: define it with a DHCP range first", field="ip")
    if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
        raise InvalidInput(f"{address} is not a host address of {subnet}", field="ip")
    if str(address) == info.address:
        raise InvalidInput(f"{address} is the network's own address", field="ip")
    name = str(name or "").strip()
    if name and not _HOSTNAME_RE.fullmatch(name):
        raise InvalidInput("the host name is letters, digits and '-' (at most 63)", field="name")
    for r in info.reservations:
        if r["mac"] == mac:
            raise InvalidInput(f"{mac} already has a reservation ({r['ip']})", field="mac")
        if r["ip"] == str(address):
            raise InvalidInput(f"{address} is already reserved for {r['mac']}", field="ip")
        if name and r["name"] == name:
            raise InvalidInput(f"the host name {name} is already used by {r['mac']}", field="name")
    return {"mac": mac, "ip": str(address), "name": name}


def build_dhcp_host_xml(mac: str, ip: str, name: str = "") -> str:
    """``<host mac=... [name=...] ip=.../>`` for ``virsh net-update ... ip-dhcp-host``."""
    host = ET.Element("host", mac=mac)
    if name:
        host.set("name", name)
    host.set("ip", ip)
    return to_text(host)


def build_network_xml(spec: NetworkSpec) -> str:
    net = ET.Element("network")
    ET.SubElement(net, "name").text = spec.name
    if spec.forward_mode != ForwardMode.NONE:
        ET.SubElement(net, "forward", mode=spec.forward_mode)
    ET.SubElement(net, "bridge", name=spec.bridge, stp="on", delay="0")
    ip = ET.SubElement(net, "ip", address=spec.address, netmask=spec.netmask)
    if spec.dhcp_start:
        dhcp = ET.SubElement(ip, "dhcp")
        ET.SubElement(dhcp, "range", start=spec.dhcp_start, end=spec.dhcp_end)
    return to_text(net)


@dataclass
class NetworkInfo:
    name: str = ""
    uuid: str = ""
    bridge: str = ""
    forward_mode: str = ForwardMode.NONE
    address: str | None = None
    netmask: str | None = None
    dhcp_start: str | None = None
    dhcp_end: str | None = None
    # <ip><dhcp><host mac= name= ip=/>: fixed addresses handed out by the network's dnsmasq.
    reservations: list[dict[str, str]] = field(default_factory=list)
    has_dhcp: bool = False

    @property
    def subnet(self) -> ipaddress.IPv4Network | None:
        if not self.address or not self.netmask:
            return None
        try:
            return ipaddress.IPv4Interface(f"{self.address}/{self.netmask}").network
        except ValueError:
            return None


def parse_network_xml(text: str) -> NetworkInfo:
    info = NetworkInfo()
    if not text:
        return info
    try:
        root = safe_parse(text, what="network XML")
    except InvalidInput:
        return info
    info.name = (root.findtext("name") or "").strip()
    info.uuid = (root.findtext("uuid") or "").strip()
    bridge = root.find("bridge")
    info.bridge = "" if bridge is None else bridge.get("name", "")
    forward = root.find("forward")
    mode = (
        "nat"
        if forward is not None and not forward.get("mode")
        else (forward.get("mode") if forward is not None else "none")
    )
    info.forward_mode = mode if mode in ForwardMode.values else ForwardMode.NONE
    for ip in root.iterfind("ip"):
        if ip.get("family", "ipv4") != "ipv4":
            continue
        info.address = ip.get("address")
        if ip.get("netmask"):
            info.netmask = ip.get("netmask")
        elif ip.get("prefix"):
            try:
                info.netmask = str(ipaddress.IPv4Network(f"0.0.0.0/{ip.get('prefix')}").netmask)
            except ValueError:
                info.netmask = None
        rng = ip.find("dhcp/range")
        if rng is not None:
            info.dhcp_start, info.dhcp_end = rng.get("start"), rng.get("end")
        info.has_dhcp = ip.find("dhcp") is not None
        info.reservations = [
            {"mac": (h.get("mac") or "").lower(), "name": h.get("name") or "", "ip": h.get("ip") or ""}
            for h in ip.iterfind("dhcp/host")
        ]
        break
    return info
