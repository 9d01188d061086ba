"""Run the host's autostart once per boot, from the agent (as LXC's own boot service would).

Install the agent as a boot service of the host (see the README) and, when it starts within
AUTOSTART_BOOT_WINDOW_SECONDS of the host's boot, it queues ``lxc-autostart --group
<AUTOSTART_BOOT_GROUPS>`` as an audited system operation, once per boot id.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from django.conf import settings

from console.models import Host
from console.operations import SYSTEM, start_operation
from containers.choices import ContainerOp

logger = logging.getLogger(__name__)


def boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def uptime_seconds() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


def autostart_on_boot(host: Host, _stop: threading.Event | None = None) -> bool:
    """Queue the boot autostart if this boot has not had it yet and the host booted just now."""
    current = boot_id()
    if host.autostart_boot_id == current:
        return False
    Host.objects.filter(pk=host.pk).update(autostart_boot_id=current)
    host.autostart_boot_id = current
    if uptime_seconds() > settings.AUTOSTART_BOOT_WINDOW_SECONDS:
        logger.info("host booted %.0f s ago: boot autostart skipped", uptime_seconds())
        return False
    start_operation(
        actor=None,
        ctx=SYSTEM,
        host=host,
        kind=ContainerOp.HOST_AUTOSTART,
        target=f"host {host.slug} autostart",
        lock_key=f"host:{host.slug}:autostart",
        params={"group": settings.AUTOSTART_BOOT_GROUPS, "all": False, "boot": True},
    )
    return True
