"""libvirt-LXC domains for real: lxc:///, Redis and a real agent, driven through the services.

Domains run on a busybox rootfs made by ``lxc-create -t busybox``; block devices are loop devices
made here and detached in teardown. Everything named with the test prefix is destroyed and
undefined afterwards.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from console.models import Host
from console.operations import RequestContext
from containers import services as native
from containers.choices import Backend
from containers.libvirt import services as domains
from containers.libvirt.domain_xml import parse_domain_xml
from containers.models import Container
from tests.host.helpers import failed
from tests.host.helpers import succeeded as ok
from tests.hosttools import virsh, wait_for

pytestmark = pytest.mark.host

CTX = RequestContext(ip="127.0.0.1", request_id="libvirt-host-test")


def busybox_rootfs(lxc_path: str, name: str) -> str:
    subprocess.run(
        ["lxc-create", "-P", lxc_path, "-n", name, "-t", "busybox"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return f"{lxc_path}/{name}/rootfs"


def domain_row(host: Host, name: str) -> Container | None:
    return Container.objects.filter(host=host, backend=Backend.LIBVIRT, name=name).first()


def the_domain(host: Host, name: str) -> Container:
    row = domain_row(host, name)
    assert row is not None, f"no row for domain {name}"
    return row


def test_domain_lifecycle_and_live_block_device(libvirt_env, loop_device, admin, start_agent, unique):
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    rootfs = busybox_rootfs(agent.lxc_path, f"{unique}-fs")
    define = ok(
        domains.define_domain(
            actor=admin,
            ctx=CTX,
            host=host,
            name=unique,
            memory_mib=64,
            vcpus=1,
            init="/bin/sh",
            rootfs=rootfs,
            bridge="lxcbr0",
        )
    )
    assert "$ virsh -c lxc:/// define" in define.log
    dom = domain_row(host, unique)
    assert dom is not None and dom.state == "STOPPED" and dom.get_backend_display() == "libvirt-LXC"
    mac = parse_domain_xml(dom.domain_xml).interfaces[0]["mac"]
    assert mac.startswith("00:16:3e:")
    assert virsh("domstate", unique).stdout.strip() == "shut off"

    # The same name again is refused before anything is queued.
    with pytest.raises(Exception, match="already exists"):
        domains.define_domain(
            actor=admin,
            ctx=CTX,
            host=host,
            name=unique,
            memory_mib=64,
            vcpus=1,
            init="/bin/sh",
            rootfs=rootfs,
        )
    # The lxc-* actions refuse a libvirt domain.
    with pytest.raises(Exception, match="libvirt-LXC domain"):
        native.start_container(actor=admin, ctx=CTX, container=dom)

    # virsh edit, in the browser's way: the stopped definition, edited and saved by the agent.
    from containers.lxc_config import config_hash

    before_uuid = parse_domain_xml(dom.domain_xml).uuid
    edited = dom.domain_xml.replace("<memory unit='KiB'>65536</memory>", "<memory unit='KiB'>98304</memory>")
    assert edited != dom.domain_xml, dom.domain_xml
    ok(
        domains.redefine_domain(
            actor=admin, ctx=CTX, container=dom, xml=edited, base_hash=config_hash(dom.domain_xml)
        )
    )
    assert "<memory unit='KiB'>98304</memory>" in virsh("dumpxml", "--inactive", unique).stdout
    dom = domain_row(host, unique)
    assert (
        parse_domain_xml(dom.domain_xml).memory_kib == 98304
        and parse_domain_xml(dom.domain_xml).uuid == before_uuid
    )

    def act(action: str, **kw) -> Container | None:
        ok(
            domains.domain_action(
                actor=admin, ctx=CTX, container=the_domain(host, unique), action=action, **kw
            )
        )
        return domain_row(host, unique)

    assert act("start").state == "RUNNING"
    assert virsh("domstate", unique).stdout.strip() == "running"
    assert act("suspend").state == "FROZEN"
    assert virsh("domstate", unique).stdout.strip() == "paused"
    assert act("resume").state == "RUNNING"
    assert act("autostart", enabled=True).autostart is True
    assert act("autostart", enabled=False).autostart is False

    # Undefine is refused while it runs.
    with pytest.raises(Exception, match="cannot be undefined"):
        domains.domain_action(actor=admin, ctx=CTX, container=domain_row(host, unique), action="undefine")

    # Live block device: attach the loop device as vdb, see it in the XML and on the page, detach it.
    op = ok(
        domains.attach_disk(
            actor=admin, ctx=CTX, container=domain_row(host, unique), device=loop_device, target="vdb"
        )
    )
    assert "attach-device" in op.log
    disks = parse_domain_xml(domain_row(host, unique).domain_xml).disks
    assert [(d["source"], d["target"]) for d in disks] == [(loop_device, "vdb")]
    assert loop_device in virsh("dumpxml", unique).stdout
    from django.test import Client

    client = Client()
    client.force_login(admin)
    page = client.get(f"/containers/{dom.pk}/").content.decode()
    assert "vdb" in page and loop_device in page and "libvirt-LXC" in page

    # A device that does not exist fails on the agent with a clear message.
    bad = failed(
        domains.attach_disk(
            actor=admin,
            ctx=CTX,
            container=domain_row(host, unique),
            device="/dev/loop-missing-xyz",
            target="vdc",
        )
    )
    assert "does not exist" in bad.error
    ok(domains.detach_disk(actor=admin, ctx=CTX, container=domain_row(host, unique), target="vdb"))
    assert parse_domain_xml(domain_row(host, unique).domain_xml).disks == []
    assert loop_device not in virsh("dumpxml", unique).stdout

    assert act("destroy").state == "STOPPED"
    assert virsh("domstate", unique).stdout.strip() == "shut off"
    ok(domains.domain_action(actor=admin, ctx=CTX, container=domain_row(host, unique), action="undefine"))
    assert domain_row(host, unique) is None
    assert virsh("dominfo", unique).returncode != 0


def test_changes_made_with_virsh_reach_the_inventory_through_events(libvirt_env, admin, start_agent, unique):
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    rootfs = busybox_rootfs(agent.lxc_path, f"{unique}-fs")
    ok(
        domains.define_domain(
            actor=admin,
            ctx=CTX,
            host=host,
            name=unique,
            memory_mib=32,
            vcpus=1,
            init="/bin/sh",
            rootfs=rootfs,
        )
    )
    # The periodic sync runs every 2 s in host tests; three changes each seen within 0.8 s
    # come from the lifecycle events (all three from the sync alone: about 6 % of runs).
    latencies = []
    for words, seen in (
        (("start", unique), lambda: getattr(domain_row(host, unique), "state", None) == "RUNNING"),
        (("destroy", unique), lambda: domain_row(host, unique).state == "STOPPED"),
        (("undefine", unique), lambda: domain_row(host, unique) is None),
    ):
        assert virsh(*words).returncode == 0
        started = time.monotonic()
        wait_for(seen, 5, interval=0.02, what=f"virsh {words[0]} to reach the inventory")
        latencies.append(time.monotonic() - started)
    assert max(latencies) < 0.8, latencies


def test_a_missing_root_filesystem_defines_nothing(libvirt_env, admin, start_agent, unique):
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    op = failed(
        domains.define_domain(
            actor=admin,
            ctx=CTX,
            host=host,
            name=unique,
            memory_mib=64,
            vcpus=1,
            init="/sbin/init",
            rootfs=f"/var/tmp/{unique}-missing",
        )
    )
    assert "does not exist" in op.error and "nothing was defined" in op.error
    assert virsh("dominfo", unique).returncode != 0


def test_conversion_of_the_busybox_config_reports_the_tmpfs_size_and_works_once_fixed(
    libvirt_env, admin, start_agent, unique
):
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    busybox_rootfs(agent.lxc_path, unique)
    container = wait_for(
        lambda: (
            Container.objects.filter(host=host, backend=Backend.LXC, name=unique)
            .exclude(config_text="")
            .first()
        ),
        15,
        what="native container in the inventory",
    )
    op = failed(domains.convert_container(actor=admin, ctx=CTX, container=container, new_name=unique))
    assert "missing tmpfs size, set the size option" in op.error
    assert "size=" in op.result["hint"] and op.result["not_converted"]
    assert any("lxc.apparmor.profile" in line for line in op.result["not_converted"])

    config = f"{agent.lxc_path}/{unique}/config"
    with open(config) as fh:
        text = fh.read()
    with open(config, "w") as fh:
        fh.write(text.replace("tmpfs defaults,create=dir", "tmpfs defaults,size=64m,create=dir"))
    op = ok(domains.convert_container(actor=admin, ctx=CTX, container=container, new_name=unique))
    xml = op.result["xml"]
    info = parse_domain_xml(xml)
    assert info.rootfs == f"{agent.lxc_path}/{unique}/rootfs"  # the "dir:" prefix removed
    assert info.consoles >= 1 and info.interfaces and info.interfaces[0]["mac"] != "00:00:00:00:00:00"
    # Defining the reviewed XML makes a libvirt domain next to the native container.
    ok(domains.define_domain_from_xml(actor=admin, ctx=CTX, host=host, xml=xml))
    assert domain_row(host, unique) is not None
    assert virsh("dominfo", unique).returncode == 0


def test_libvirtd_unreachable_fails_fast_and_clearly(libvirt_env, admin, start_agent, unique):
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    Host.objects.filter(pk=host.pk).update(libvirt_uri="lxc:///?socket=/nonexistent")
    host.refresh_from_db()
    started = time.monotonic()
    op = failed(
        domains.define_domain(
            actor=admin,
            ctx=CTX,
            host=host,
            name=unique,
            memory_mib=64,
            vcpus=1,
            init="/bin/sh",
            rootfs="/var/tmp",
        ),
        timeout=20,
    )
    assert time.monotonic() - started < 10
    assert f"libvirtd is not running on host {host.slug}" in op.error
    assert "/nonexistent" in op.error
