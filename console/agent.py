"""The agent: a Celery worker on a managed host, consuming the queue ``host.<slug>``.

Started as ``CONSOLE_AGENT_HOST=<slug> celery -A console worker -Q host.<slug>``
(see ``manage.py agent``). When the worker is ready it registers or refreshes its
``Host`` row, fails operations a previous life of the agent left running, detects
the host's capabilities, then keeps a heartbeat and a periodic inventory sync going
in background threads.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

logger = logging.getLogger(__name__)

_stop = threading.Event()
_threads: list[threading.Thread] = []
# Inventory syncers registered by apps: called with (host) on the agent.
INVENTORY_SYNCERS: list[Callable] = []


def current_host_slug() -> str | None:
    return os.environ.get("CONSOLE_AGENT_HOST") or None


def worker_name() -> str:
    return os.environ.get("CONSOLE_AGENT_NAME") or f"agent-{current_host_slug()}@{socket.gethostname()}"


def register_host():  # -> Host
    """Create or refresh this agent's Host row from its environment."""
    from console.models import Host

    slug = current_host_slug()
    lxc_path = os.environ.get("CONSOLE_LXC_PATH", settings.CONSOLE_DEFAULT_LXC_PATH)
    host, created = Host.objects.get_or_create(
        slug=slug,
        defaults={
            "name": os.environ.get("CONSOLE_HOST_NAME") or socket.gethostname(),
            "address": os.environ.get("CONSOLE_HOST_ADDRESS", ""),
            "lxc_path": lxc_path,
            "libvirt_uri": os.environ.get("CONSOLE_LIBVIRT_URI", "lxc:///"),
        },
    )
    host.agent_name = worker_name()
    host.last_heartbeat = timezone.now()
    host.lxc_path = lxc_path
    host.save(update_fields=["agent_name", "last_heartbeat", "lxc_path"])
    logger.info("agent for host %s %s", slug, "registered" if created else "refreshed")
    return host


def fail_orphaned_operations(host) -> int:
    """Operations left running by a previous life of this agent cannot finish: fail them."""
    from console.models import Operation

    return Operation.objects.fail_running(
        host, "the agent stopped while this operation was running; check the target's state"
    )


def detect_and_store_capabilities(host) -> None:
    from console.drivers.host import detect_capabilities

    host.capabilities = detect_capabilities(host)
    host.capabilities_detected_at = timezone.now()
    host.save(update_fields=["capabilities", "capabilities_detected_at"])


def sync_inventory(host) -> None:
    for syncer in INVENTORY_SYNCERS:
        try:
            syncer(host)
        except Exception:
            logger.exception("inventory sync %s failed", getattr(syncer, "__name__", syncer))
    type(host).objects.filter(pk=host.pk).update(last_inventory_sync=timezone.now())


def _loop(every: float, func: Callable[[], None], name: str) -> threading.Thread:
    def run() -> None:
        while not _stop.is_set():
            try:
                func()
            except Exception:
                logger.exception("%s failed", name)
            finally:
                close_old_connections()
            _stop.wait(every)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    _threads.append(thread)
    return thread


def start_agent() -> None:
    from console.models import Host

    host = register_host()
    failed = fail_orphaned_operations(host)
    if failed:
        logger.warning("%d operation(s) left running by a previous agent marked failed", failed)
    detect_and_store_capabilities(host)
    _stop.clear()

    def heartbeat() -> None:
        Host.objects.filter(pk=host.pk).update(last_heartbeat=timezone.now(), agent_name=worker_name())

    _loop(settings.AGENT_HEARTBEAT_SECONDS, heartbeat, "agent-heartbeat")
    _loop(settings.INVENTORY_SYNC_SECONDS, lambda: sync_inventory(Host.objects.get(pk=host.pk)), "agent-sync")
    for starter in AGENT_WATCHERS:
        starter(host, _stop)


# Long-running event watchers (lxc-monitor, libvirt events) registered by apps:
# called once with (host, stop_event) and expected to start their own thread.
AGENT_WATCHERS: list[Callable] = []


@worker_ready.connect
def _on_worker_ready(**_kwargs) -> None:
    if current_host_slug():
        start_agent()


@worker_shutdown.connect
def _on_worker_shutdown(**_kwargs) -> None:
    _stop.set()
