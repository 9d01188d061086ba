"""Keep libvirt networks (Network rows) in step with the host, on the agent.

A periodic full sync (``INVENTORY_SYNCERS``) and, through ``console.libvirt_events``, a refresh
of one row whenever libvirt reports a lifecycle event for it.
"""

from __future__ import annotations

import logging
import threading

from django.db import transaction
from django.utils import timezone

from console.drivers.libvirt_conn import LibvirtUnavailable
from console.libvirt_events import libvirt_enabled, serialised
from console.models import Host
from console.runner import Runner
from networks.drivers.libvirt import LibvirtNetworkDriver, NetworkState
from networks.models import Network
from networks.network_xml import parse_network_xml

logger = logging.getLogger(__name__)
_write_lock = threading.RLock()  # network rows: see console.libvirt_events.serialised


def network_driver(host: Host, runner: Runner | None = None) -> LibvirtNetworkDriver:
    return LibvirtNetworkDriver(host.libvirt_uri, host.slug, runner)


def _apply_network(network: Network, state: NetworkState) -> None:
    info = parse_network_xml(state.xml)
    network.bridge = info.bridge[:15]
    network.forward_mode = info.forward_mode
    network.address, network.netmask = info.address, info.netmask
    network.dhcp_start, network.dhcp_end = info.dhcp_start, info.dhcp_end
    network.active, network.autostart, network.persistent = state.active, state.autostart, state.persistent
    network.uuid = info.uuid
    network.xml = state.xml
    network.leases = state.leases
    network.last_seen = timezone.now()


@serialised(_write_lock)
def sync_networks(host: Host, runner: Runner | None = None) -> list[str]:
    states = network_driver(host, runner).list()
    with transaction.atomic():
        existing = {n.name: n for n in Network.objects.filter(host=host)}
        for state in states:
            network = existing.get(state.name) or Network(host=host, name=state.name)
            _apply_network(network, state)
            network.save()
        names = [s.name for s in states]
        Network.objects.filter(host=host).exclude(name__in=names).delete()
    return names


@serialised(_write_lock)
def refresh_network(host: Host, name: str, runner: Runner | None = None) -> Network | None:
    state = network_driver(host, runner).get(name)
    if state is None:
        Network.objects.filter(host=host, name=name).delete()
        return None
    network = Network.objects.filter(host=host, name=name).first() or Network(host=host, name=name)
    _apply_network(network, state)
    network.save()
    return network


def sync_host(host: Host) -> None:
    """The periodic full sync of the host's networks (a safety net under the events)."""
    if not libvirt_enabled(host):
        return
    try:
        sync_networks(host)
    except LibvirtUnavailable as exc:
        logger.warning("libvirt network inventory of %s skipped: %s", host.slug, exc)
