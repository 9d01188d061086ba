"""libvirt networks through the agent's one connection per host URI (``virsh net-*`` equivalents)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import libvirt

from console.drivers import libvirt_conn
from console.drivers.libvirt_conn import LibvirtError
from console.runner import Runner


@dataclass
class NetworkState:
    name: str
    active: bool
    autostart: bool
    persistent: bool
    xml: str
    leases: list[dict[str, Any]] = field(default_factory=list)


def _leases(net: Any) -> list[dict[str, Any]]:
    try:
        rows = net.DHCPLeases() or []
    except libvirt.libvirtError:
        return []  # drivers without dnsmasq lease files (test:///) have none
    return [
        {
            "mac": r.get("mac", ""),
            "ip": r.get("ipaddr", ""),
            "prefix": r.get("prefix"),
            "hostname": r.get("hostname") or "",
            "expires": r.get("expirytime"),
        }
        for r in rows
    ]


def _state_of(net: Any) -> NetworkState:
    active = bool(net.isActive())
    return NetworkState(
        name=net.name(),
        active=active,
        autostart=bool(net.autostart()),
        persistent=bool(net.isPersistent()),
        xml=net.XMLDesc(0),
        leases=_leases(net) if active else [],
    )


def bridge_exists(name: str) -> bool:
    """A network interface of that name exists on this host (``/sys/class/net/NAME``)."""
    return os.path.lexists(os.path.join("/sys/class/net", name))


class LibvirtNetworkDriver:
    def __init__(self, uri: str, host_label: str, runner: Runner | None = None) -> None:
        self.uri = uri
        self.host_label = host_label
        self.runner = runner or Runner(None)

    def _call(self, words: list[str], func: Any, *, message: str = "", record: bool = True) -> Any:
        return libvirt_conn.logged_call(
            self.runner, self.uri, words, func, host_label=self.host_label, message=message, record=record
        )

    def _on_network(self, words: list[str], name: str, action: Any, *, message: str = "") -> Any:
        return self._call(words, lambda c: action(c.networkLookupByName(name)), message=message)

    def list(self) -> list[NetworkState]:
        """``virsh net-list --all``, with each network's XML and DHCP leases."""

        def run(conn: Any) -> list[NetworkState]:
            out = []
            for net in conn.listAllNetworks(0):
                try:
                    out.append(_state_of(net))
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_NETWORK:
                        raise
            return out

        return self._call(["net-list", "--all"], run, record=False)

    def get(self, name: str) -> NetworkState | None:
        def run(conn: Any) -> NetworkState | None:
            try:
                return _state_of(conn.networkLookupByName(name))
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
                    return None
                raise

        return self._call(["net-info", name], run, record=False)

    def define(self, xml: str) -> str:
        return self._call(
            ["net-define", "/dev/stdin"],
            lambda c: c.networkDefineXML(xml).name(),
            message="libvirt refused the network XML",
        )

    def start(self, name: str) -> None:
        self._on_network(["net-start", name], name, lambda n: n.create(), message=f"{name} did not start")

    def stop(self, name: str) -> None:
        self._on_network(
            ["net-destroy", name], name, lambda n: n.destroy(), message=f"{name} could not be stopped"
        )

    def undefine(self, name: str) -> None:
        def run(net: Any) -> None:
            if net.isActive():
                raise LibvirtError(
                    f"network {name} is active: stop it first; nothing was undefined",
                    argv=libvirt_conn.virsh_argv(self.uri, "net-undefine", name),
                )
            net.undefine()

        self._on_network(["net-undefine", name], name, run, message=f"{name} could not be undefined")

    def set_autostart(self, name: str, enabled: bool) -> None:
        words = ["net-autostart", name] if enabled else ["net-autostart", "--disable", name]
        self._on_network(words, name, lambda n: n.setAutostart(1 if enabled else 0))

    def update_dhcp_host(self, name: str, host_xml: str, *, add: bool) -> None:
        """``virsh net-update NAME add-last|delete ip-dhcp-host XML --live --config``: the running
        dnsmasq (when active) and the saved definition (when persistent) both change."""

        def run(net: Any) -> None:
            flags = 0
            if net.isActive():
                flags |= libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE
            if net.isPersistent():
                flags |= libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG
            command = (
                libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST
                if add
                else libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE
            )
            net.update(command, libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, host_xml, flags)

        verb = "add-last" if add else "delete"
        self._on_network(
            ["net-update", name, verb, "ip-dhcp-host", host_xml, "--live", "--config"],
            name,
            run,
            message=f"libvirt could not {'add' if add else 'remove'} the DHCP reservation on {name}",
        )
