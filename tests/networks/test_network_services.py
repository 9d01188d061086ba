"""libvirt networks: the XML round trip, bad input refused (an audit row, nothing queued), state, role."""

from __future__ import annotations

import pytest

from console.errors import Conflict, Forbidden, InvalidInput, ServiceError
from console.models import AuditEvent, Operation
from console.operations import RequestContext
from console.safe_xml import safe_parse
from networks import services as nets
from networks.models import Network
from networks.network_xml import build_network_xml, parse_network_xml, validate_network_spec

CTX = RequestContext(ip="127.0.0.1", request_id="libvirt-unit")


def refused(func, exc_type=ServiceError, match: str = "", **kwargs):
    ops, audits = Operation.objects.count(), AuditEvent.objects.count()
    with pytest.raises(exc_type, match=match):
        func(**kwargs)
    assert Operation.objects.count() == ops, "a refused request queued an operation"
    assert AuditEvent.objects.count() == audits + 1
    assert AuditEvent.objects.latest("pk").result == "refused"


def test_network_xml_round_trip():
    spec = validate_network_spec(
        name="n1",
        bridge="virbr50",
        forward_mode="nat",
        address="192.168.250.1",
        netmask="24",
        dhcp_start="192.168.250.10",
        dhcp_end="192.168.250.99",
    )
    info = parse_network_xml(build_network_xml(spec))
    assert (
        info.name,
        info.bridge,
        info.forward_mode,
        info.address,
        info.netmask,
        info.dhcp_start,
        info.dhcp_end,
    ) == ("n1", "virbr50", "nat", "192.168.250.1", "255.255.255.0", "192.168.250.10", "192.168.250.99")
    assert safe_parse(build_network_xml(spec)).find("forward").get("mode") == "nat"


NET = {
    "name": "n2",
    "bridge": "virbr60",
    "forward_mode": "none",
    "address": "192.168.250.1",
    "netmask": "255.255.255.0",
    "dhcp_start": "192.168.250.10",
    "dhcp_end": "192.168.250.20",
}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"name": "../x"}, "network names"),
        ({"bridge": "a-very-long-bridge-name"}, "bridge name"),
        ({"bridge": "-x"}, "bridge name"),
        ({"forward_mode": "bridge"}, "forward mode"),
        ({"address": "300.1.1.1"}, "IPv4 address"),
        ({"address": "192.168.250.0"}, "network or broadcast"),
        ({"address": "127.0.0.1", "dhcp_start": "", "dhcp_end": ""}, "cannot be a network"),
        ({"netmask": "255.0.255.0"}, "netmask"),
        ({"netmask": "32"}, "too small"),
        ({"dhcp_start": "10.0.0.2"}, "inside 192.168.250.0/24"),
        ({"dhcp_end": "192.168.251.5"}, "inside 192.168.250.0/24"),
        ({"dhcp_end": "192.168.250.255"}, "inside"),
        ({"dhcp_start": "192.168.250.30"}, "starts after it ends"),
        ({"dhcp_start": "192.168.250.1"}, "own address"),
        (
            {"address": "192.168.249.1", "netmask": "255.255.254.0", "dhcp_start": "", "dhcp_end": ""},
            "overlaps",
        ),
        ({"name": "taken"}, "already exists"),
        ({"bridge": "virbr9"}, "already used"),
    ],
)
def test_define_network_refuses_bad_values(changes, message, admin, host):
    Network.objects.create(
        host=host, name="taken", bridge="virbr9", address="192.168.249.1", netmask="255.255.255.0"
    )
    refused(nets.define_network, match=message, actor=admin, ctx=CTX, host=host, **{**NET, **changes})


def test_network_overlapping_a_host_interface_is_refused(admin, host):
    """The host's own subnets (lxcbr0 and the uplink, from ``ip -j -4 addr`` recorded on this
    machine) are taken too, not only the libvirt networks'."""
    from pathlib import Path

    from console.drivers.host import parse_ip_addr_json

    recorded = parse_ip_addr_json((Path(__file__).parent / "host_ip_addr.json").read_text())
    assert {"ifname": "lxcbr0", "address": "10.0.3.1", "network": "10.0.3.0/24"} in recorded
    assert all(e["ifname"] != "lo" for e in recorded)  # host scope: not a subnet anything routes
    host.capabilities = {**host.capabilities, "ipv4": recorded}
    host.save()
    lxcbr = {"address": "10.0.3.129", "netmask": "255.255.255.128", "dhcp_start": "", "dhcp_end": ""}
    refused(
        nets.define_network,
        match=r"10.0.3.128/25 overlaps the subnet 10.0.3.0/24 of host interface lxcbr0",
        actor=admin, ctx=CTX, host=host, **{**NET, **lxcbr},
    )  # fmt: skip
    # The libvirt network's own entry is named as such, and a free subnet is accepted.
    Network.objects.create(
        host=host, name="taken", bridge="virbr9", address="10.0.3.1", netmask="255.255.255.0"
    )
    refused(
        nets.define_network, match="of network 'taken'", actor=admin, ctx=CTX, host=host, **{**NET, **lxcbr}
    )
    op = nets.define_network(actor=admin, ctx=CTX, host=host, **NET)
    assert op.kind == "libvirt.network.define" and "192.168.250.1" in op.params["xml"]


def test_network_actions_check_state_and_role(admin, operator, host):
    net = Network.objects.create(host=host, name="n3", bridge="virbr3", active=True)
    refused(nets.network_action, Forbidden, "admin", actor=operator, ctx=CTX, network=net, action="stop")
    refused(
        nets.network_action, Conflict, "stop it first", actor=admin, ctx=CTX, network=net, action="undefine"
    )
    refused(nets.network_action, Conflict, "already", actor=admin, ctx=CTX, network=net, action="start")
    refused(nets.network_action, InvalidInput, "unknown", actor=admin, ctx=CTX, network=net, action="reboot")
    assert (
        nets.network_action(actor=admin, ctx=CTX, network=net, action="stop").kind == "libvirt.network.stop"
    )
