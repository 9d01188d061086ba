"""Bad input for libvirt domains and networks: clear refusals, an audit row, nothing queued.

Also the XML builders and readers, and the connection helper against ``test:///default`` (libvirt's
in-memory driver) and a socket that does not exist.
"""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest

from console.drivers import libvirt_conn
from console.drivers.libvirt_conn import LibvirtUnavailable
from console.errors import Conflict, Forbidden, InvalidInput, ServiceError
from console.identifiers import validate_mac
from console.models import AuditEvent, Operation
from console.operations import RequestContext
from console.safe_xml import MAX_XML_BYTES, safe_parse
from containers import services as native
from containers.libvirt import services as domains
from containers.libvirt.domain_xml import (
    DomainSpec,
    build_domain_xml,
    fix_converted,
    parse_domain_xml,
    readable_by_libvirt,
    unconverted_lines,
    validate_domain_document,
)
from containers.models import Container
from networks import services as nets
from networks.models import Network
from networks.network_xml import build_network_xml, parse_network_xml, validate_network_spec

CTX = RequestContext(ip="127.0.0.1", request_id="libvirt-unit")
GOOD = {"memory_mib": 64, "vcpus": 1, "init": "/bin/sh", "rootfs": "/srv/rootfs"}


@pytest.fixture
def domain(db, host):
    xml = build_domain_xml(
        DomainSpec("dom1", 64, 1, "/bin/sh", "/srv/r", bridge="lxcbr0", mac="00:16:3e:00:00:01")
    )
    return Container.objects.create(
        host=host, name="dom1", backend="libvirt", state="RUNNING", domain_xml=xml
    )


def refused(func, exc_type=ServiceError, match: str = "", **kwargs):
    ops, audits = Operation.objects.count(), AuditEvent.objects.count()
    with pytest.raises(exc_type, match=match):
        func(**kwargs)
    assert Operation.objects.count() == ops, "a refused request queued an operation"
    assert AuditEvent.objects.count() == audits + 1
    assert AuditEvent.objects.latest("pk").result == "refused"


# ------------------------------------------------------------------ XML


def test_domain_xml_is_built_with_the_emulator_console_and_interface():
    xml = build_domain_xml(
        DomainSpec("a", 128, 2, "/sbin/init", "/srv/a", network="lan", mac="52:54:00:aa:bb:cc")
    )
    info = parse_domain_xml(xml)
    assert (info.name, info.memory_kib, info.vcpus, info.init, info.rootfs) == (
        "a",
        128 * 1024,
        2,
        "/sbin/init",
        "/srv/a",
    )
    assert info.interfaces == [{"type": "network", "source": "lan", "mac": "52:54:00:aa:bb:cc", "dev": ""}]
    assert info.consoles == 1 and "/usr/lib/libvirt/libvirt_lxc" in xml
    # Hostile values stay text: no markup injection through a field.
    xml = build_domain_xml(
        DomainSpec("b", 64, 1, "/bin/sh'/><x a='", "/srv/<b>&", bridge="br0", mac="00:16:3e:00:00:02")
    )
    assert parse_domain_xml(xml).rootfs == "/srv/<b>&" and "<x" not in xml.replace("&lt;", "")


@pytest.mark.parametrize(
    "text, message",
    [
        ('<!DOCTYPE d [<!ENTITY x "y">]><domain type="lxc"><name>&x;</name></domain>', "not allowed"),
        ('<!DOCTYPE d SYSTEM "file:///etc/passwd"><domain type="lxc"/>', "not allowed"),
        (
            '<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            '<domain type="lxc">&b;</domain>',
            "not allowed",
        ),
        ("<domain type='lxc'><name>a</name>" + "<x/>" * (MAX_XML_BYTES // 4) + "</domain>", "at most 64 KiB"),
        ("<domain type='kvm'><name>a</name></domain>", "only type='lxc'"),
        ("<domain><name>a</name></domain>", "only type='lxc'"),
        ("<network><name>a</name></network>", "not 'domain'"),
        ("<domain type='lxc'><name>-bad</name></domain>", "must not start"),
        (
            "<domain type='lxc'><name>a</name><devices><interface type='bridge'>"
            "<mac address='01:00:5e:00:00:01'/>"
            "</interface></devices></domain>",
            "multicast",
        ),
        ("<domain type='lxc'><name>a</name>", "not well-formed"),
        ("", "empty"),
    ],
)
def test_hostile_or_wrong_domain_xml_is_refused(text, message):
    with pytest.raises(InvalidInput, match=message):
        validate_domain_document(text)


@pytest.mark.parametrize(
    "value, ok",
    [
        ("00:16:3e:12:34:56", True),
        ("52:54:00:AB:CD:EF", True),
        ("00:00:00:00:00:00", False),
        ("01:16:3e:12:34:56", False),
        ("00:16:3e:12:34", False),
        ("00-16-3e-12-34-56", False),
        ("00:16:3e:12:34:5g", False),
        ("00:16:3e:12:34:56\n", True),
    ],
)
def test_mac_validation(value, ok):
    if ok:
        assert validate_mac(value) == value.strip().lower()
    else:
        with pytest.raises(InvalidInput):
            validate_mac(value)


def test_conversion_repairs_and_lists_what_libvirt_ignores():
    raw = (
        "<domain type='lxc'><name>x</name><uuid>01f029eb-2f8f-4cb7-a8ad-4d7c2f442909</uuid><devices>"
        "<filesystem type='mount'><source dir='dir:/var/lib/lxc/x/rootfs'/><target dir='/'/></filesystem>"
        "<interface type='bridge'><mac address='00:00:00:00:00:00'/><source bridge='lxcbr0'/></interface>"
        "</devices></domain>"
    )
    xml, fixes = fix_converted(raw, add_console_device=True, name="x2")
    info = parse_domain_xml(xml)
    assert info.name == "x2" and info.rootfs == "/var/lib/lxc/x/rootfs" and info.consoles == 1
    assert info.interfaces[0]["mac"].startswith("00:16:3e:") and not info.uuid
    assert len(fixes) == 4
    lines = unconverted_lines(
        "lxc.rootfs.path = dir:/r\nlxc.apparmor.profile = unconfined\n# c\nlxc.net.0.type = veth\n"
    )
    assert lines == ["lxc.apparmor.profile = unconfined"]


def test_lines_libvirt_cannot_read_are_left_out_of_what_it_converts():
    """libvirt's reader refused a whole config with a hook ("expecting an assignment"): a key with
    a '-' is left out of what it gets, and is listed as not converted."""
    text = (
        "lxc.rootfs.path = dir:/r\n# a comment\nlxc.hook.pre-start = /var/lib/lxc/x/hooks/pre-start\n"
        "lxc.mount.entry = /srv mnt none bind 0 0\n\nlxc.cgroup.memory.limit_in_bytes = 1\n"
    )
    assert readable_by_libvirt(text) == (
        "lxc.rootfs.path = dir:/r\n# a comment\nlxc.mount.entry = /srv mnt none bind 0 0\n\n"
        "lxc.cgroup.memory.limit_in_bytes = 1\n"
    )
    assert unconverted_lines(text) == ["lxc.hook.pre-start = /var/lib/lxc/x/hooks/pre-start"]


def test_conversion_removes_mounts_libvirt_cannot_make():
    # What domxml-from-native made of the busybox template's config on this host (virsh 9.0).
    raw = (
        "<domain type='lxc'><name>b</name><devices>"
        "<filesystem type='mount' accessmode='passthrough'><source dir='dir:/var/lib/lxc/b/rootfs'/>"
        "<target dir='/'/></filesystem>"
        "<filesystem type='ram' accessmode='passthrough'><source usage='65536' units='KiB'/>"
        "<target dir='/dev/shm'/></filesystem>"
        "<filesystem type='mount' accessmode='passthrough'><source dir='mqueue'/>"
        "<target dir='/dev/mqueue'/></filesystem>"
        "<filesystem type='mount' accessmode='passthrough'><source dir='/lib'/><target dir='/lib'/>"
        "<readonly/></filesystem>"
        "<filesystem type='mount' accessmode='passthrough'><source dir='/usr/lib64-missing'/>"
        "<target dir='/usr/lib64'/><readonly/></filesystem>"
        "</devices></domain>"
    )
    xml, fixes = fix_converted(raw, add_console_device=False, exists=lambda p: p != "/usr/lib64-missing")
    kept = [fs.find("target").get("dir") for fs in safe_parse(xml).iterfind("devices/filesystem")]
    assert kept == ["/", "/dev/shm", "/lib"]
    assert any("removed the mount of 'mqueue' on /dev/mqueue" in f for f in fixes)
    assert any("/usr/lib64-missing does not exist" in f for f in fixes)
    # Typed back into the review, the same entry is refused before anything is queued.
    with pytest.raises(InvalidInput, match="not an absolute path"):
        validate_domain_document(raw.replace("dir:/var/lib/lxc/b/rootfs", "/var/lib/lxc/b/rootfs"))
    assert validate_domain_document(xml)[0] == "b"


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


# ------------------------------------------------------------------ domain services


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"name": "-x"}, "must not start"),
        ({"name": "a b"}, "may contain only"),
        ({"name": "x" * 64}, "at most 63"),
        ({"memory_mib": 15}, "between 16 and 65536"),
        ({"memory_mib": 65537}, "between 16 and 65536"),
        ({"memory_mib": "lots"}, "whole number"),
        ({"vcpus": 0}, "between 1 and"),
        ({"vcpus": 4096}, "between 1 and"),
        ({"init": "sbin/init"}, "absolute"),
        ({"rootfs": "relative/dir"}, "absolute"),
        ({"rootfs": "/srv/../etc"}, "'..'"),
        ({"rootfs": "/"}, "host's own /"),
        ({"bridge": "br0; rm -rf /"}, "bridge name"),
        ({"bridge": "br0", "network": "n1"}, "not both"),
        ({"network": "nosuchnet"}, "no libvirt network"),
        ({"bridge": "br0", "mac": "01:00:5e:00:00:01"}, "multicast"),
        ({"bridge": "br0", "mac": "nonsense"}, "look like"),
        ({"mac": "00:16:3e:00:00:09"}, "needs a network or a bridge"),
    ],
)
def test_define_domain_refuses_bad_values(changes, message, admin, host):
    values = {"name": "d1", **GOOD, **changes}
    refused(domains.define_domain, match=message, actor=admin, ctx=CTX, host=host, **values)


def test_taken_names_and_macs_are_refused(admin, host, domain):
    refused(
        domains.define_domain,
        Conflict,
        "already exists",
        actor=admin,
        ctx=CTX,
        host=host,
        name="dom1",
        **GOOD,
    )
    refused(
        domains.define_domain,
        Conflict,
        "already used by domain 'dom1'",
        actor=admin,
        ctx=CTX,
        host=host,
        name="dom2",
        bridge="lxcbr0",
        mac="00:16:3e:00:00:01",
        **GOOD,
    )
    xml = build_domain_xml(DomainSpec("dom1", 64, 1, "/bin/sh", "/srv/x"))
    refused(
        domains.define_domain_from_xml, Conflict, "already exists", actor=admin, ctx=CTX, host=host, xml=xml
    )


def test_pasted_xml_needs_admin_and_is_queued_when_good(admin, operator, host):
    xml = build_domain_xml(DomainSpec("pasted", 64, 1, "/bin/sh", "/srv/x"))
    refused(domains.define_domain_from_xml, Forbidden, "admin", actor=operator, ctx=CTX, host=host, xml=xml)
    op = domains.define_domain_from_xml(actor=admin, ctx=CTX, host=host, xml=xml)
    assert op.kind == "libvirt.domain.define" and op.params["name"] == "pasted"


def test_generated_mac_uses_the_xen_prefix(admin, host):
    op = domains.define_domain(actor=admin, ctx=CTX, host=host, name="d9", bridge="lxcbr0", **GOOD)
    mac = parse_domain_xml(op.params["xml"]).interfaces[0]["mac"]
    assert mac.startswith("00:16:3e:") and validate_mac(mac) == mac


@pytest.mark.parametrize(
    "device, target, message",
    [
        ("/dev/loop3", "vda", "vdb to vdz"),
        ("/dev/loop3", "sdb", "vdb to vdz"),
        ("/etc/passwd", "vdb", "under /dev"),
        ("loop3", "vdb", "absolute"),
        ("/dev/../etc/shadow", "vdb", "'..'"),
    ],
)
def test_attach_disk_refuses_bad_devices_and_targets(device, target, message, admin, domain):
    refused(
        domains.attach_disk,
        match=message,
        actor=admin,
        ctx=CTX,
        container=domain,
        device=device,
        target=target,
    )


def test_attach_disk_needs_a_running_domain_and_a_free_target(admin, domain):
    Container.objects.filter(pk=domain.pk).update(state="STOPPED")
    domain.refresh_from_db()
    refused(
        domains.attach_disk,
        Conflict,
        "running domain",
        actor=admin,
        ctx=CTX,
        container=domain,
        device="/dev/loop3",
        target="vdb",
    )
    refused(
        domains.detach_disk, Conflict, "no disk at vdc", actor=admin, ctx=CTX, container=domain, target="vdc"
    )


def test_native_and_libvirt_actions_refuse_each_other(admin, host, domain):
    lxc = Container.objects.create(host=host, name="web1", lxc_path="/var/lib/lxc", state="STOPPED")
    refused(native.start_container, Conflict, "libvirt-LXC domain", actor=admin, ctx=CTX, container=domain)
    refused(native.freeze_container, Conflict, "libvirt-LXC domain", actor=admin, ctx=CTX, container=domain)
    refused(
        domains.domain_action,
        Conflict,
        "native LXC container",
        actor=admin,
        ctx=CTX,
        container=lxc,
        action="start",
    )
    refused(
        domains.domain_action,
        Conflict,
        "cannot be undefined",
        actor=admin,
        ctx=CTX,
        container=domain,
        action="undefine",
    )


def test_viewer_cannot_act_on_domains(viewer, domain):
    refused(
        domains.domain_action, Forbidden, "operate", actor=viewer, ctx=CTX, container=domain, action="destroy"
    )


# ------------------------------------------------------------------ network services

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


# ------------------------------------------------------------------ connection helper


def test_the_connection_is_kept_and_reopened_after_it_dies():
    uri = "test:///default"
    libvirt_conn.forget(uri)
    first = libvirt_conn.connection(uri)
    assert libvirt_conn.connection(uri) is first
    assert "test" in libvirt_conn.call(uri, lambda c: [d.name() for d in c.listAllDomains(0)])
    first.close()  # as if libvirtd went away under the agent
    names = libvirt_conn.call(uri, lambda c: [n.name() for n in c.listAllNetworks(0)])
    assert "default" in names
    assert libvirt_conn.connection(uri) is not first
    libvirt_conn.forget(uri)


def test_drivers_read_the_test_hypervisor():
    from containers.drivers.libvirt import LibvirtDomainDriver
    from networks.drivers.libvirt import LibvirtNetworkDriver

    domains_ = {d.name: d for d in LibvirtDomainDriver("test:///default", "t").list()}
    assert domains_["test"].state == "RUNNING" and "<domain" in domains_["test"].xml
    nets_ = {n.name: n for n in LibvirtNetworkDriver("test:///default", "t").list()}
    assert nets_["default"].active and parse_network_xml(nets_["default"].xml).name == "default"
    libvirt_conn.forget("test:///default")


def test_an_unreachable_libvirtd_fails_fast_with_a_clear_message():
    from containers.drivers.libvirt import LibvirtDomainDriver

    started = time.monotonic()
    with pytest.raises(LibvirtUnavailable, match="libvirtd is not running on host h1: .*/nonexistent"):
        LibvirtDomainDriver("lxc:///?socket=/nonexistent", "h1").list()
    assert time.monotonic() - started < 2


def test_the_define_form_opens_unbound_with_its_defaults(client, make_user, host):
    admin = make_user("form-admin", role="admin")
    client.force_login(admin)
    page = client.get("/containers/libvirt/new/").content.decode()
    assert "This field is required" not in page
    assert 'value="128"' in page and 'value="/bin/sh"' in page


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


# ------------------------------------------------------------------ editing a definition


@pytest.fixture
def stopped(db, host):
    xml = build_domain_xml(
        DomainSpec("dom2", 64, 1, "/bin/sh", "/srv/r2", bridge="lxcbr0", mac="00:16:3e:00:00:02")
    ).replace("<name>dom2</name>", "<name>dom2</name><uuid>0b6b3a3e-5d5c-4b8a-9d59-2f1f6f0e6a01</uuid>")
    return Container.objects.create(
        host=host, name="dom2", backend="libvirt", state="STOPPED", domain_xml=xml
    )


def _edit(container, xml: str, base: str | None = None, **kw):
    from containers.lxc_config import config_hash

    return dict(
        actor=kw.pop("actor"), ctx=CTX, container=container, xml=xml,
        base_hash=config_hash(container.domain_xml) if base is None else base,
    )  # fmt: skip


def test_editing_a_definition_refuses_what_is_not_an_edit(admin, operator, domain, stopped):
    text = stopped.domain_xml
    refused(
        domains.redefine_domain,
        Conflict,
        "shut it down first",
        **_edit(domain, domain.domain_xml, actor=admin),
    )
    refused(
        domains.redefine_domain,
        Conflict,
        "changed since you loaded it",
        **_edit(stopped, text, "0" * 64, actor=admin),
    )
    renamed = text.replace("<name>dom2</name>", "<name>dom3</name>")
    refused(
        domains.redefine_domain,
        InvalidInput,
        "renaming is not an edit",
        **_edit(stopped, renamed, actor=admin),
    )
    refused(domains.redefine_domain, InvalidInput, "UUID must stay",
            **_edit(stopped, text.replace("0b6b3a3e", "1b6b3a3e"), actor=admin))  # fmt: skip
    refused(domains.redefine_domain, InvalidInput, "only type='lxc'",
            **_edit(stopped, text.replace("type='lxc'", "type='kvm'").replace('type="lxc"', 'type="kvm"'),
                    actor=admin))  # fmt: skip
    refused(domains.redefine_domain, InvalidInput, "entities",
            **_edit(stopped, '<!DOCTYPE d [<!ENTITY x "y">]><domain type="lxc"><name>&x;</name></domain>',
                    actor=admin))  # fmt: skip
    taken = text.replace("00:16:3e:00:00:02", "00:16:3e:00:00:01")
    refused(
        domains.redefine_domain,
        Conflict,
        "already used by domain 'dom1'",
        **_edit(stopped, taken, actor=admin),
    )
    refused(domains.redefine_domain, Forbidden, "admin", **_edit(stopped, text, actor=operator))
    native_row = Container.objects.create(host=stopped.host, name="nat1", state="STOPPED", config_text="")
    refused(
        domains.redefine_domain, Conflict, "is a native LXC container", **_edit(native_row, text, actor=admin)
    )


def test_an_edit_is_queued_with_the_uuid_kept(admin, stopped):
    edited = stopped.domain_xml.replace("<uuid>0b6b3a3e-5d5c-4b8a-9d59-2f1f6f0e6a01</uuid>", "")
    edited = edited.replace('<memory unit="MiB">64</memory>', '<memory unit="MiB">128</memory>')
    assert ">128<" in edited, "the fixture's memory element changed shape"
    op = domains.redefine_domain(**_edit(stopped, edited, actor=admin))
    assert op.kind == "libvirt.domain.redefine" and op.lock_key == stopped.lock_key
    info = parse_domain_xml(op.params["xml"])
    assert (info.uuid, info.memory_kib, info.name) == ("0b6b3a3e-5d5c-4b8a-9d59-2f1f6f0e6a01", 131072, "dom2")
    assert AuditEvent.objects.get(action="libvirt.domain.redefine").before["xml"] == stopped.domain_xml


def test_the_edit_page_shows_a_diff_and_only_admins_save(client, admin, viewer, stopped):
    client.force_login(admin)
    page = client.get(f"/containers/{stopped.pk}/domain-xml/").content.decode()
    assert "Save this definition" not in page and "Show the changes" in page
    edited = stopped.domain_xml.replace('<memory unit="MiB">64</memory>', '<memory unit="MiB">128</memory>')
    from containers.lxc_config import config_hash

    page = client.post(
        f"/containers/{stopped.pk}/domain-xml/",
        # As a browser sends a textarea: CRLF line ends (only the changed line may show in the diff).
        {
            "mode": "preview",
            "text": edited.replace("\n", "\r\n"),
            "base_hash": config_hash(stopped.domain_xml),
        },
    ).content.decode()
    diff = page.split("Changes to save")[1]
    assert "-  &lt;memory unit=&quot;MiB&quot;&gt;64&lt;/memory&gt;" in diff, diff[:600]
    assert "+  &lt;memory unit=&quot;MiB&quot;&gt;128&lt;/memory&gt;" in diff
    assert "-  &lt;name&gt;dom2" not in diff, "unchanged lines shown as changed"
    assert "Save this definition" in page and Operation.objects.count() == 0
    client.force_login(viewer)
    page = client.get(f"/containers/{stopped.pk}/domain-xml/").content.decode()
    assert "Only administrators" in page and "<textarea" not in page


# ------------------------------------------------------------ host paths and numbers (issue 12.6)
# Each was accepted before: a root filesystem that is the host's / by another name, kernel
# filesystems, control characters (a trailing newline too), non-ASCII digits.
@pytest.mark.parametrize(
    "changes, message",
    [
        ({"rootfs": "/proc/self/root"}, "kernel's own"),
        ({"rootfs": "/proc/self/root/srv/r"}, "kernel's own"),
        ({"rootfs": "//"}, "host's own /"),
        ({"rootfs": "/dev/shm/r"}, "kernel's own"),
        ({"rootfs": "/sys/fs/r"}, "kernel's own"),
        ({"rootfs": "/srv/rootfs\n"}, "control characters"),
        ({"rootfs": "/srv/ro\u2028otfs"}, "control characters"),
        ({"init": "/sbin/init\n"}, "control characters"),
        ({"memory_mib": "١٢٨"}, "whole number"),
        ({"memory_mib": "128\n"}, "whole number"),
        ({"memory_mib": "１２８"}, "whole number"),
        ({"vcpus": "١"}, "whole number"),
        ({"vcpus": "1\n"}, "whole number"),
    ],
)
def test_define_domain_refuses_hidden_host_roots_and_odd_digits(changes, message, admin, host):
    values = {"name": "d1", **GOOD, **changes}
    refused(domains.define_domain, match=message, actor=admin, ctx=CTX, host=host, **values)


def _with_filesystems(*pairs: tuple[str, str]) -> str:
    """A pasted definition whose filesystems are ``(source dir, target dir)`` pairs."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(build_domain_xml(DomainSpec("pasted2", 64, 1, "/bin/sh", "/srv/x")))
    devices = root.find("devices")
    assert devices is not None
    for fs in devices.findall("filesystem"):
        devices.remove(fs)
    for source, target in pairs:
        fs = ET.SubElement(devices, "filesystem", type="mount")
        ET.SubElement(fs, "source", dir=source)
        ET.SubElement(fs, "target", dir=target)
    return ET.tostring(root, encoding="unicode")


@pytest.mark.parametrize(
    "pairs, message",
    [
        ([("/", "/")], "host's root"),
        ([("/proc/self/root", "/")], "kernel's own"),
        ([("//", "/")], "host's root"),
        ([("/proc/self/root/", "/")], "kernel's own"),
        ([("/srv/x\n", "/")], "control characters"),
        ([("relative/x", "/")], "absolute"),
        ([], "target dir is '/'"),
        ([("/srv/x", "/mnt/x")], "target dir is '/'"),
    ],
)
def test_pasted_and_edited_xml_refuse_the_hosts_root_by_any_name(pairs, message, admin, host, stopped):
    xml = _with_filesystems(*pairs)
    refused(domains.define_domain_from_xml, InvalidInput, message, actor=admin, ctx=CTX, host=host, xml=xml)
    edited = xml.replace("<name>pasted2</name>", "<name>dom2</name>")
    edited = edited.replace(
        "<name>dom2</name>", "<name>dom2</name><uuid>0b6b3a3e-5d5c-4b8a-9d59-2f1f6f0e6a01</uuid>"
    )
    refused(domains.redefine_domain, InvalidInput, message, **_edit(stopped, edited, actor=admin))


def test_the_agent_refuses_a_domain_root_that_is_a_symlink_to_the_host_root(admin, host, tmp_path):
    """The web side sees a harmless directory name; the agent, where libvirt will follow the
    link, sees the host's /."""
    from console.runner import Runner
    from containers.libvirt.handlers import define, redefine

    (tmp_path / "rootfs").symlink_to("/proc/self/root")
    (tmp_path / "shm").symlink_to("/dev/shm")
    # A unique name, undefined at the end: an agent that wrongly accepts would define it for real.
    name = f"linked-{uuid.uuid4().hex[:8]}"
    try:
        for handler, target in ((define, "rootfs"), (redefine, "shm")):
            xml = build_domain_xml(DomainSpec(name, 64, 1, "/bin/sh", str(tmp_path / target)))
            op = Operation.objects.create(
                host=host,
                kind="libvirt.domain.define",
                target="t",
                lock_key=f"t:{target}",
                params={"name": name, "xml": xml, "rootfs": str(tmp_path / target)},
            )
            with pytest.raises(ServiceError, match="resolves to"):
                handler(op, Runner(op))
    finally:
        subprocess.run(["virsh", "-c", "lxc:///", "undefine", name], capture_output=True, timeout=30)


def test_the_attach_form_offers_only_the_hosts_free_devices(client, admin, host, domain):
    import re

    from containers.libvirt.domain_xml import DomainSpec, build_domain_xml
    from storage.models import HostStorage

    def dev(path, **kw):
        return {"path": path, "size": 2**24, "type": "loop", "fstype": "", "mountpoint": "", **kw}

    HostStorage.objects.create(
        host=host,
        image_dir="/x",
        block_devices=[
            dev("/dev/loop3", fstype="ext4"),
            dev("/dev/loop4"),
            dev("/dev/loop5", mountpoint="/mnt"),
        ],
    )
    other = Container.objects.create(
        host=host,
        name="dom2",
        backend="libvirt",
        state="RUNNING",
        domain_xml=build_domain_xml(DomainSpec("dom2", 64, 1, "/bin/sh", "/srv/q", mac="00:16:3e:00:00:02")),
    )
    client.force_login(admin)

    def offered() -> list[str]:
        body = client.get(f"/containers/{domain.pk}/").content.decode()
        return re.findall(r'<option value="(/dev/[^"]+)"', body)

    assert offered() == ["/dev/loop3", "/dev/loop4"]  # the mounted one is not offered
    # A device another domain has is not offered either.
    other.domain_xml = other.domain_xml.replace(
        "</devices>",
        "<disk type='block' device='disk'><source dev='/dev/loop4'/>"
        "<target dev='vdb' bus='virtio'/></disk></devices>",
    )
    other.save()
    assert offered() == ["/dev/loop3"]
