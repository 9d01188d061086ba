"""Keep libvirt domains (as Container rows, backend "libvirt") and networks in step with the host.

Runs on the agent: a periodic full sync (``INVENTORY_SYNCERS``) and a watcher
(``AGENT_WATCHERS``) that refreshes one row whenever libvirt reports a lifecycle event.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from typing import Any

from django.db import close_old_connections, transaction
from django.utils import timezone

from console.drivers import libvirt_conn
from console.drivers.libvirt_conn import LibvirtUnavailable
from console.models import Host
from console.runner import Runner
from containers import signals
from containers.choices import Backend, State
from containers.domain_xml import parse_domain_xml
from containers.drivers.libvirt import DomainState, LibvirtDomainDriver
from containers.models import Container
from networks.drivers.libvirt import LibvirtNetworkDriver, NetworkState
from networks.models import Network
from networks.network_xml import parse_network_xml

logger = logging.getLogger(__name__)
# Operations, the event worker and the periodic sync all upsert the same rows from threads of
# one agent process: one at a time, or two of them insert the same new row.
_write_lock = threading.RLock()


def _serialised(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with _write_lock:
            return func(*args, **kwargs)

    return wrapper


def _libvirt_enabled(host: Host) -> bool:
    caps = host.capabilities or {}
    return bool(host.libvirt_uri) and caps.get("libvirt", {}).get("available", True) is not False


def domain_driver(host: Host, runner: Runner | None = None) -> LibvirtDomainDriver:
    return LibvirtDomainDriver(host.libvirt_uri, host.slug, runner)


def network_driver(host: Host, runner: Runner | None = None) -> LibvirtNetworkDriver:
    return LibvirtNetworkDriver(host.libvirt_uri, host.slug, runner)


def _apply_domain(container: Container, state: DomainState) -> None:
    info = parse_domain_xml(state.xml)
    container.state = state.state if state.state in State.values else State.UNKNOWN
    container.pid = state.pid
    container.autostart = state.autostart
    container.domain_xml = state.xml
    container.rootfs = info.rootfs
    container.store = "dir" if info.rootfs else ""
    container.last_seen = timezone.now()


def _rows(host: Host):
    return Container.objects.filter(host=host, backend=Backend.LIBVIRT, lxc_path="")


@_serialised
def sync_domains(host: Host, runner: Runner | None = None) -> list[str]:
    """Upsert every domain of the host's libvirt URI; drop rows of domains that are gone."""
    states = domain_driver(host, runner).list()
    with transaction.atomic():
        existing = {c.name: c for c in _rows(host)}
        for state in states:
            container = existing.get(state.name) or Container(
                host=host, backend=Backend.LIBVIRT, lxc_path="", name=state.name
            )
            _apply_domain(container, state)
            container.save()
        names = [s.name for s in states]
        _rows(host).exclude(name__in=names).delete()
    return names


@_serialised
def refresh_domain(host: Host, name: str, runner: Runner | None = None) -> Container | None:
    state = domain_driver(host, runner).get(name)
    qs = _rows(host).filter(name=name)
    if state is None:
        qs.delete()
        return None
    container = qs.first() or Container(host=host, backend=Backend.LIBVIRT, lxc_path="", name=name)
    _apply_domain(container, state)
    container.save()
    return container


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


@_serialised
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


@_serialised
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
    """The periodic full sync of domains and networks (a safety net under the events)."""
    if not _libvirt_enabled(host):
        return
    try:
        sync_domains(host)
        sync_networks(host)
    except LibvirtUnavailable as exc:
        logger.warning("libvirt inventory of %s skipped: %s", host.slug, exc)
        changed = list(_rows(host).exclude(state=State.UNKNOWN).values_list("pk", flat=True))
        _rows(host).filter(pk__in=changed).update(state=State.UNKNOWN, pid=None)
        signals.state_changed(host.pk, changed)


# ------------------------------------------------------------------ events

_events: queue.Queue[tuple[str, str] | None] = queue.Queue()


def _hook(uri: str, conn: Any) -> None:
    libvirt_conn.register_lifecycle_events(
        conn,
        on_domain=lambda name, _event: _events.put(("domain", name)),
        on_network=lambda name, _event: _events.put(("network", name)),
    )


def start_libvirt_watcher(host: Host, stop: threading.Event) -> None:
    """Refresh a domain's or network's row as soon as libvirt reports a lifecycle event.

    A keeper thread holds the connection open (which registers the callbacks on every new
    connection, so a libvirtd restart is survived); a worker thread applies the events."""
    if not _libvirt_enabled(host):
        return
    if _hook not in libvirt_conn.ON_CONNECT:
        libvirt_conn.ON_CONNECT.append(_hook)
    uri = host.libvirt_uri

    def keep() -> None:
        while not stop.is_set():
            try:
                libvirt_conn.connection(uri, host.slug)
            except LibvirtUnavailable as exc:
                logger.info("libvirt events of %s wait for libvirtd: %s", host.slug, exc)
            except Exception:
                logger.exception("libvirt connection keeper failed")
            stop.wait(2)
        _events.put(None)

    def work() -> None:
        while not stop.is_set():
            item = _events.get()
            if item is None:
                break
            kind, name = item
            try:
                fresh = Host.objects.get(pk=host.pk)
                if kind == "domain":
                    refresh_domain(fresh, name)
                else:
                    refresh_network(fresh, name)
            except Exception:
                logger.exception("libvirt event refresh of %s %s failed", kind, name)
            finally:
                close_old_connections()

    threading.Thread(target=keep, name="libvirt-keeper", daemon=True).start()
    threading.Thread(target=work, name="libvirt-events-worker", daemon=True).start()
