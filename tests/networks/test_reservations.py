"""DHCP reservations of a libvirt network: bad values refused, the XML and operation, the network page."""

from __future__ import annotations

import pytest

from console.errors import Forbidden, ServiceError
from console.models import AuditEvent, Operation
from console.operations import RequestContext
from console.safe_xml import safe_parse
from networks import services as nets
from networks.models import Network

CTX = RequestContext(ip="127.0.0.1", request_id="libvirt-unit")


def refused(func, exc_type=ServiceError, match: str = "", **kwargs):
    ops, audits = Operation.objects.count(), AuditEvent.objects.count()
    with pytest.raises(exc_type, match=match):
        func(**kwargs)
    assert Operation.objects.count() == ops, "a refused request queued an operation"
    assert AuditEvent.objects.count() == audits + 1
    assert AuditEvent.objects.latest("pk").result == "refused"


RESERVED_XML = """<network><name>r1</name><bridge name='virbr31'/>
  <ip address='192.168.31.1' netmask='255.255.255.0'><dhcp><range start='192.168.31.10' end='192.168.31.99'/>
  <host mac='52:54:00:00:00:0a' name='db' ip='192.168.31.5'/></dhcp></ip></network>"""


@pytest.fixture
def reserved(host):
    return Network.objects.create(
        host=host,
        name="r1",
        bridge="virbr31",
        address="192.168.31.1",
        netmask="255.255.255.0",
        xml=RESERVED_XML,
    )


@pytest.mark.parametrize(
    "mac, ip, name, message",
    [
        ("52:54:00:00:00", "192.168.31.6", "", "must look like"),
        ("01:00:5e:00:00:01", "192.168.31.6", "", "multicast MAC"),  # multicast bit
        ("52:54:00:00:00:0b; rm", "192.168.31.6", "", "must look like"),
        ("00:00:00:00:00:00", "192.168.31.6", "", "all-zero"),
        ("52:54:00:00:00:0b", "10.0.0.6", "", "not a host address of 192.168.31.0/24"),
        ("52:54:00:00:00:0b", "192.168.31.255", "", "not a host address"),
        ("52:54:00:00:00:0b", "192.168.31.1", "", "network's own address"),
        ("52:54:00:00:00:0b", "192.168.31.300", "", "IPv4 address"),
        ("52:54:00:00:00:0A", "192.168.31.6", "", "already has a reservation"),  # case-insensitive
        ("52:54:00:00:00:0b", "192.168.31.5", "", "already reserved for 52:54:00:00:00:0a"),
        ("52:54:00:00:00:0b", "192.168.31.6", "db", "already used"),
        ("52:54:00:00:00:0b", "192.168.31.6", "-bad", "host name"),
        ("52:54:00:00:00:0b", "192.168.31.6", "a'b", "host name"),
    ],
)
def test_reservations_refuse_bad_values(mac, ip, name, message, admin, reserved):
    refused(
        nets.change_reservation, match=message, actor=admin, ctx=CTX, network=reserved, change="add",
        mac=mac, ip=ip, name=name,
    )  # fmt: skip


def test_reservations_need_dhcp_an_admin_and_a_known_mac(admin, operator, host, reserved):
    plain = Network.objects.create(
        host=host, name="nodhcp", bridge="virbr32", xml="<network><name>nodhcp</name>"
        "<ip address='192.168.32.1' netmask='255.255.255.0'/></network>",
    )  # fmt: skip
    refused(nets.change_reservation, match="no IPv4 DHCP", actor=admin, ctx=CTX, network=plain, change="add",
            mac="52:54:00:00:00:0b", ip="192.168.32.5")  # fmt: skip
    refused(nets.change_reservation, Forbidden, "admin", actor=operator, ctx=CTX, network=reserved,
            change="add", mac="52:54:00:00:00:0b", ip="192.168.31.6")  # fmt: skip
    refused(nets.change_reservation, match="no reservation for", actor=admin, ctx=CTX, network=reserved,
            change="remove", mac="52:54:00:00:00:0b")  # fmt: skip
    refused(nets.change_reservation, match="unknown change", actor=admin, ctx=CTX, network=reserved,
            change="modify", mac="52:54:00:00:00:0a")  # fmt: skip


def test_reservation_xml_and_operation(admin, reserved):
    op = nets.change_reservation(
        actor=admin, ctx=CTX, network=reserved, change="add", mac="52:54:00:00:00:0B", ip="192.168.31.6",
        name="web",
    )  # fmt: skip
    assert op.kind == "libvirt.network.dhcp_host" and op.params["change"] == "add"

    element = safe_parse(op.params["xml"], what="host XML")
    assert (element.tag, element.attrib) == (
        "host",
        {"mac": "52:54:00:00:00:0b", "name": "web", "ip": "192.168.31.6"},
    )
    assert op.lock_key == reserved.lock_key
    # The libvirt test driver takes the same element through the same call the agent makes.
    import libvirt

    conn = libvirt.open("test:///default")
    try:
        net = conn.networkLookupByName("default")
        from networks.network_xml import build_dhcp_host_xml, parse_network_xml

        host_xml = build_dhcp_host_xml("52:54:00:00:00:0c", "192.168.122.60", "t1")
        net.update(libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST, -1,
                   host_xml, libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE)  # fmt: skip
        info = parse_network_xml(net.XMLDesc(0))
        assert {"mac": "52:54:00:00:00:0c", "name": "t1", "ip": "192.168.122.60"} in info.reservations
    finally:
        conn.close()


def test_network_page_lists_reservations_and_offers_the_form(client, admin, viewer, reserved):
    client.force_login(admin)
    page = client.get(f"/networks/{reserved.pk}/").content.decode()
    assert "<code>52:54:00:00:00:0a</code></td><td>192.168.31.5</td><td>db</td>" in page
    assert f"/networks/{reserved.pk}/reservations/add/" in page
    assert 'hx-confirm="Remove the reservation of 52:54:00:00:00:0a (192.168.31.5)?' in page
    client.force_login(viewer)
    page = client.get(f"/networks/{reserved.pk}/").content.decode()
    assert "192.168.31.5" in page and "/reservations/add/" not in page
