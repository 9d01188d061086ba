"""Keep libvirt domains (as Container rows, backend "libvirt") in step with the host.

Runs on the agent: a periodic full sync (``INVENTORY_SYNCERS``) and, through
``console.libvirt_events``, a refresh of one row whenever libvirt reports a lifecycle event.
Networks have their own sync (``networks.inventory``).
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
from containers import signals
from containers.choices import Backend, State
from containers.drivers.libvirt import DomainState, LibvirtDomainDriver
from containers.libvirt.domain_xml import parse_domain_xml
from containers.models import Container

logger = logging.getLogger(__name__)
_write_lock = threading.RLock()  # domain rows: see console.libvirt_events.serialised


def domain_driver(host: Host, runner: Runner | None = None) -> LibvirtDomainDriver:
    return LibvirtDomainDriver(host.libvirt_uri, host.slug, runner)


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


@serialised(_write_lock)
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


@serialised(_write_lock)
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


def sync_host(host: Host) -> None:
    """The periodic full sync of the host's domains (a safety net under the events)."""
    if not libvirt_enabled(host):
        return
    try:
        sync_domains(host)
    except LibvirtUnavailable as exc:
        logger.warning("libvirt inventory of %s skipped: %s", host.slug, exc)
        changed = list(_rows(host).exclude(state=State.UNKNOWN).values_list("pk", flat=True))
        _rows(host).filter(pk__in=changed).update(state=State.UNKNOWN, pid=None)
        signals.state_changed(host.pk, changed)
