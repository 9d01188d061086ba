"""Keep the Container rows in step with what the host really has (runs on the agent)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from console.models import Host
from console.runner import CommandError, Runner
from containers.choices import Backend, State
from containers.drivers.lxc import ContainerInfo, LxcDriver
from containers.models import Container

logger = logging.getLogger(__name__)


def _apply(container: Container, info: ContainerInfo, driver: LxcDriver) -> None:
    cfg = driver.config(container.name)
    container.state = info.state if info.state in State.values else State.UNKNOWN
    container.pid = info.pid if container.state != State.STOPPED else None
    container.ips = info.ips if container.state != State.STOPPED else []
    container.autostart = cfg.autostart
    container.start_delay = cfg.start_delay
    container.start_order = cfg.start_order
    container.groups = cfg.groups or info.groups
    container.rootfs = cfg.rootfs
    container.store = cfg.store
    if info.usage:
        container.usage = info.usage
    elif container.state == State.STOPPED:
        container.usage = {}
    container.last_seen = timezone.now()


def sync_lxc_path(host: Host, lxc_path: str, runner: Runner | None = None) -> list[str]:
    """Upsert every container under ``lxc_path`` and drop rows of containers gone from it."""
    driver = LxcDriver(runner or Runner(None), lxc_path)
    infos = driver.list()
    seen = []
    with transaction.atomic():
        existing = {
            c.name: c for c in Container.objects.filter(host=host, backend=Backend.LXC, lxc_path=lxc_path)
        }
        for info in infos:
            container = existing.get(info.name) or Container(
                host=host, backend=Backend.LXC, lxc_path=lxc_path, name=info.name
            )
            _apply(container, info, driver)
            container.save()
            seen.append(info.name)
        gone = [name for name in existing if name not in seen]
        if gone:
            Container.objects.filter(
                host=host, backend=Backend.LXC, lxc_path=lxc_path, name__in=gone
            ).delete()
    return seen


def sync_host(host: Host) -> None:
    """The periodic full sync: every LXC path of the host."""
    for path in host.lxc_paths:
        try:
            sync_lxc_path(host, path)
        except CommandError as exc:
            logger.warning("inventory of %s:%s failed: %s", host.slug, path, exc)


def refresh_container(host: Host, lxc_path: str, name: str, runner: Runner | None = None) -> Container | None:
    """Refresh one container's row after an operation (or delete it if it no longer exists)."""
    driver = LxcDriver(runner or Runner(None), lxc_path)
    qs = Container.objects.filter(host=host, backend=Backend.LXC, lxc_path=lxc_path, name=name)
    if not driver.exists(name):
        qs.delete()
        return None
    info = driver.info(name)
    container = qs.first() or Container(host=host, backend=Backend.LXC, lxc_path=lxc_path, name=name)
    _apply(container, info, driver)
    container.save()
    return container
