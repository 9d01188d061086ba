"""libvirt networks for real: lxc:///, Redis and a real agent, driven through the services.

Networks use 192.168.25x.0/24 as configuration only (no traffic leaves this machine). Everything
named with the test prefix is destroyed and undefined afterwards.
"""

from __future__ import annotations

import pytest

from console.models import Host
from console.operations import RequestContext
from networks import services as nets
from networks.models import Network
from tests.host.helpers import failed
from tests.host.helpers import succeeded as ok
from tests.hosttools import virsh, wait_for

pytestmark = pytest.mark.host

CTX = RequestContext(ip="127.0.0.1", request_id="libvirt-host-test")


def test_network_define_start_stop_undefine(libvirt_env, admin, start_agent, unique):
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    wait_for(lambda: Host.objects.get(pk=host.pk).last_inventory_sync, 10, what="first sync")
    bridge = f"b{unique[-8:]}"
    op = ok(
        nets.define_network(
            actor=admin,
            ctx=CTX,
            host=host,
            name=unique,
            bridge=bridge,
            forward_mode="none",
            address="192.168.251.1",
            netmask="255.255.255.0",
            dhcp_start="192.168.251.10",
            dhcp_end="192.168.251.50",
        )
    )
    assert "$ virsh -c lxc:/// net-define" in op.log
    net = Network.objects.get(host=host, name=unique)
    assert (net.bridge, net.address, net.dhcp_start, net.active) == (
        bridge,
        "192.168.251.1",
        "192.168.251.10",
        False,
    )
    # An overlapping subnet is refused before anything is queued.
    with pytest.raises(Exception, match="overlaps"):
        nets.define_network(
            actor=admin,
            ctx=CTX,
            host=host,
            name=f"{unique}x",
            bridge=f"{bridge}x",
            forward_mode="none",
            address="192.168.251.129",
            netmask="255.255.255.128",
        )

    def act(action: str, **kw) -> Network | None:
        ok(
            nets.network_action(
                actor=admin, ctx=CTX, network=Network.objects.get(pk=net.pk), action=action, **kw
            )
        )
        return Network.objects.filter(pk=net.pk).first()

    assert act("start").active is True
    assert unique in virsh("net-list", "--name").stdout
    with open(f"/sys/class/net/{bridge}/operstate") as fh:
        assert fh.read().strip() in ("up", "down", "unknown")

    # A DHCP reservation, live and saved: libvirt's XML and the running dnsmasq's hosts file.
    def reserve(change: str, **kw) -> Network:
        ok(
            nets.change_reservation(
                actor=admin, ctx=CTX, network=Network.objects.get(pk=net.pk), change=change, **kw
            )
        )
        return Network.objects.get(pk=net.pk)

    net = reserve("add", mac="52:54:00:AB:CD:EF", ip="192.168.251.77", name="web1")
    dumped = virsh("net-dumpxml", unique).stdout
    assert "<host mac='52:54:00:ab:cd:ef' name='web1' ip='192.168.251.77'/>" in dumped, dumped
    inactive = virsh("net-dumpxml", "--inactive", unique).stdout
    assert "ip='192.168.251.77'" in inactive, "the saved definition lacks the reservation"
    with open(f"/var/lib/libvirt/dnsmasq/{unique}.hostsfile") as fh:
        assert "52:54:00:ab:cd:ef,192.168.251.77,web1" in fh.read()
    assert "192.168.251.77" in net.xml  # the inventory the page reads
    with pytest.raises(Exception, match="already reserved"):
        nets.change_reservation(
            actor=admin, ctx=CTX, network=net, change="add", mac="52:54:00:00:00:01", ip="192.168.251.77"
        )
    net = reserve("remove", mac="52:54:00:ab:cd:ef")
    assert "192.168.251.77" not in virsh("net-dumpxml", unique).stdout
    assert "192.168.251.77" not in virsh("net-dumpxml", "--inactive", unique).stdout
    assert act("autostart", enabled=True).autostart is True
    assert act("stop").active is False
    assert act("autostart", enabled=False).autostart is False
    assert act("undefine") is None
    assert unique not in virsh("net-list", "--all", "--name").stdout


def test_an_existing_bridge_name_is_refused_by_the_agent(libvirt_env, admin, start_agent, unique):
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    op = failed(
        nets.define_network(
            actor=admin,
            ctx=CTX,
            host=host,
            name=unique,
            bridge="lo",
            forward_mode="none",
            address="192.168.252.1",
            netmask="255.255.255.0",
        )
    )
    assert "already exists on host" in op.error
    assert unique not in virsh("net-list", "--all", "--name").stdout
