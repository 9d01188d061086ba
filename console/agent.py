"""The agent: a Celery worker on a managed host, consuming the queue ``host.<slug>``.

Started as ``CONSOLE_AGENT_HOST=<slug> celery -A console worker -Q host.<slug>``
(see ``manage.py agent``). When the worker is ready it registers or refreshes its
``Host`` row, adopts the operations a previous life of the agent left running
(``console.recovery``), detects the host's capabilities, then keeps a heartbeat, a periodic
inventory sync and the claim of pending operations from the database going in background
threads.

The database is the queue of record: an operation is a pending row first, and the broker
message only wakes the agent up. Every ``AGENT_CLAIM_SECONDS`` the agent runs its host's pending
operations, oldest first, through the same atomic claim as the message: a lost message delays
an operation by at most that period, and a message delivered twice runs it once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

logger = logging.getLogger(__name__)

_stop = threading.Event()
_threads: list[threading.Thread] = []
# When this life of the agent started: running operations claimed before it are orphans.
_life_started = timezone.now()
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


class Claimer:
    """Runs the host's pending operations found in the database (a lost broker message's cover).

    Each is handed to a small pool of threads once (``_handed`` remembers it until it has run);
    ``console.tasks.execute`` claims it atomically, so one that a message started meanwhile is
    skipped there."""

    def __init__(self, host, workers: int = 2) -> None:  # host: Host
        self.host = host
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agent-claimed")
        self._handed: set[int] = set()
        self._lock = threading.Lock()

    def claim_pending(self) -> int:
        from console.models import Operation
        from console.recovery import checking

        rows = list(Operation.objects.claimable(self.host).values_list("pk", "lock_key")[:50])
        # Targets whose earlier operation this agent is still checking (console.recovery) wait.
        held = checking()
        handed = 0
        for pk, lock_key in rows:
            if lock_key in held:
                continue
            with self._lock:
                if pk in self._handed:
                    continue
                self._handed.add(pk)
            self.pool.submit(self._run, pk)
            handed += 1
        return handed

    def _run(self, pk: int) -> None:
        from console.models import Operation
        from console.tasks import run_verified

        try:
            op = Operation.objects.select_related("host").filter(pk=pk, host=self.host).first()
            if op is not None and op.status == "pending":
                logger.info("operation %s claimed from the database", pk)
                run_verified(op)
        except Exception:
            logger.exception("claimed operation %s failed to run", pk)
        finally:
            with self._lock:
                self._handed.discard(pk)
            close_old_connections()


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


def _loop(every: float, func: Callable[[], object], name: str) -> threading.Thread:
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
    from console.recovery import adopt_orphans

    host = register_host()
    adopt_orphans(host, _life_started)
    detect_and_store_capabilities(host)
    _stop.clear()
    claimer = Claimer(host)

    def heartbeat() -> None:
        Host.objects.filter(pk=host.pk).update(last_heartbeat=timezone.now(), agent_name=worker_name())

    _loop(settings.AGENT_HEARTBEAT_SECONDS, heartbeat, "agent-heartbeat")
    _loop(settings.INVENTORY_SYNC_SECONDS, lambda: sync_inventory(Host.objects.get(pk=host.pk)), "agent-sync")
    _loop(settings.AGENT_CLAIM_SECONDS, claimer.claim_pending, "agent-claim")
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
