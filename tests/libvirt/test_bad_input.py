"""Bad input for libvirt domains: clear refusals, an audit row, nothing queued.

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
from networks.network_xml import parse_network_xml

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
