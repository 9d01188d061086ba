"""Every change to a libvirt network goes through here: validate, authorize, lock, audit, enqueue."""

from __future__ import annotations

import ipaddress
from typing import Any

from console.errors import Conflict, InvalidInput
from console.models import Host, Operation
from console.operations import RequestContext, active_operation, operation_request
from networks.choices import NetworkAction, NetworkOp
from networks.models import Network, network_lock_key
from networks.network_xml import (
    build_dhcp_host_xml,
    build_network_xml,
    parse_network_xml,
    validate_network_spec,
    validate_reservation,
)

ACTIONS = {
    # action: (operation kind, whether the network must be active (True), inactive (False) or either)
    "start": (NetworkOp.START, False),
    "stop": (NetworkOp.STOP, True),
    "undefine": (NetworkOp.UNDEFINE, False),
    "autostart": (NetworkOp.AUTOSTART, None),
}


def taken_subnets(host: Host, *, but: str = "") -> dict[str, ipaddress.IPv4Network]:
    """The IPv4 subnets in use on the host: its libvirt networks (as the inventory last saw them),
    then its own interfaces' (lxcbr0, the uplink; as the agent last detected them)."""
    taken: dict[str, ipaddress.IPv4Network] = {}
    for net in Network.objects.filter(host=host).exclude(name=but):
        if net.address and net.netmask:
            try:
                taken[f"network {net.name!r}"] = ipaddress.IPv4Interface(
                    f"{net.address}/{net.netmask}"
                ).network
            except ValueError:
                continue
    seen = set(taken.values())
    for entry in (host.capabilities or {}).get("ipv4", []):
        try:
            subnet = ipaddress.IPv4Network(entry["network"])
        except (KeyError, TypeError, ValueError):
            continue
        if subnet not in seen:  # a running libvirt network's own bridge
            taken[f"host interface {entry.get('ifname', '?')}"] = subnet
            seen.add(subnet)
    return taken


def define_network(
    *,
    actor: Any,
    ctx: RequestContext,
    host: Host,
    name: str,
    bridge: str,
    forward_mode: str,
    address: str,
    netmask: str,
    dhcp_start: str = "",
    dhcp_end: str = "",
) -> Operation:
    """``virsh net-define`` from the form; the agent refuses a bridge that already exists on the host."""
    params = {
        "name": name,
        "bridge": bridge,
        "forward_mode": forward_mode,
        "address": address,
        "netmask": netmask,
        "dhcp_start": dhcp_start,
        "dhcp_end": dhcp_end,
    }
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=NetworkOp.DEFINE,
        role="admin",
        host=host,
        target=f"network {host.slug}/{name}",
        params=params,
    ) as request:
        spec = validate_network_spec(**params, taken_subnets=taken_subnets(host))
        if Network.objects.filter(host=host, name=spec.name).exists():
            raise Conflict(f"a network named {spec.name!r} already exists on host {host.slug}", field="name")
        if Network.objects.filter(host=host, bridge=spec.bridge).exists():
            raise Conflict(
                f"the bridge {spec.bridge} is already used by another libvirt network", field="bridge"
            )
        if active_operation(network_lock_key(host.slug, spec.name)):
            raise Conflict(f"an operation on a network named {spec.name!r} is already running", field="name")
        xml = build_network_xml(spec)
        return request.queue(
            target=f"network {host.slug}/{spec.name}",
            lock_key=network_lock_key(host.slug, spec.name),
            params={"name": spec.name, "bridge": spec.bridge, "xml": xml},
            after={"xml": xml},
            audit_params=params,
        )


def network_action(
    *, actor: Any, ctx: RequestContext, network: Network, action: str, enabled: bool | None = None
) -> Operation:
    """start (net-start), stop (net-destroy), undefine, autostart on/off."""
    params: dict[str, Any] = {"name": network.name}
    if action == "autostart":
        params["enabled"] = bool(enabled)
    kind = ACTIONS.get(action, (NetworkAction.ACTION, None))[0]
    with operation_request(
        actor=actor, ctx=ctx, kind=kind, role="admin", host=network.host, target=network.target, params=params
    ) as request:
        if action not in ACTIONS:
            raise InvalidInput(f"unknown network action {action!r}")
        _kind, must_be_active = ACTIONS[action]
        if must_be_active is True and not network.active:
            raise Conflict(f"network {network.name} is not active")
        if must_be_active is False and network.active:
            raise Conflict(
                f"network {network.name} is active"
                + (": stop it first" if action == "undefine" else " already")
            )
        return request.queue(
            lock_key=network.lock_key,
            params=params,
            before={"active": network.active, "autostart": network.autostart},
        )


def change_reservation(
    *,
    actor: Any,
    ctx: RequestContext,
    network: Network,
    change: str,
    mac: str,
    ip: str = "",
    name: str = "",
) -> Operation:
    """Add or remove a DHCP host reservation (``virsh net-update ... ip-dhcp-host``), live and saved."""
    params = {"name": network.name, "change": change, "mac": mac, "ip": ip, "host_name": name}
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=NetworkOp.DHCP_HOST,
        role="admin",
        host=network.host,
        target=network.target,
        params=params,
    ) as request:
        info = parse_network_xml(network.xml)
        entry: dict[str, str] | None
        if change == "add":
            entry = validate_reservation(info, mac, ip, name)
        elif change == "remove":
            wanted = str(mac or "").strip().lower()
            entry = next((r for r in info.reservations if r["mac"] == wanted), None)
            if entry is None:
                raise InvalidInput(f"{network.name} has no reservation for {mac!r}", field="mac")
        else:
            raise InvalidInput(f"unknown change {change!r}: add or remove")
        return request.queue(
            lock_key=network.lock_key,
            params={
                "name": network.name,
                "change": change,
                "xml": build_dhcp_host_xml(entry["mac"], entry["ip"], entry["name"]),
            },
            before={"reservations": info.reservations},
            audit_params=params,
        )
