"""The web side's host watch: a host whose agent has sent no heartbeat for longer than
``HOST_DEAD_AFTER_SECONDS`` is known dead, and the operations it was running are recorded as
failed ("host vm1 offline since 14:02:11; outcome unknown"), which frees their targets.

Why the web side: a dead host's own agent cannot do it, and the other hosts' agents must not
(an agent writes only its own host's rows). Every web process runs the watch in a thread
(``console.asgi``); the failing is one conditional UPDATE per operation (still running, host's
heartbeat unchanged), so two web processes, or an agent that returns at that moment, never
both settle one operation.

When the agent of such a host starts again it checks each of them on the host as it adopts the
operations an earlier life left running (``console.recovery``), logs what it found and keeps
the status: the target was freed and may have been acted on since.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from console.choices import OperationStatus
from console.models import Operation

logger = logging.getLogger(__name__)

_started = threading.Lock()
_thread: threading.Thread | None = None


def fail_operations_of_dead_hosts() -> list[Operation]:
    """Record as failed the running operations of every host known dead; returns them."""
    cutoff = timezone.now() - timedelta(seconds=settings.HOST_DEAD_AFTER_SECONDS)
    failed = []
    running = Operation.objects.filter(
        status=OperationStatus.RUNNING, host__last_heartbeat__lt=cutoff
    ).select_related("host")
    for op in running.defer("log"):
        if op.fail_host_dead(op.host):
            logger.warning("operation %s failed: %s", op.pk, op.error)
            failed.append(op)
    return failed


def watch(stop: threading.Event, every: float | None = None) -> None:
    """Look every ``every`` seconds (``HOST_WATCH_SECONDS``) until ``stop`` is set."""
    try:
        while not stop.is_set():
            try:
                fail_operations_of_dead_hosts()
            except Exception:  # a database that cannot be reached now is tried again next time
                logger.exception("host watch failed")
            finally:
                close_old_connections()
            stop.wait(every if every is not None else settings.HOST_WATCH_SECONDS)
    finally:
        connection.close()


def start() -> threading.Thread | None:
    """Start this process's watch thread once (none if ``HOST_WATCH_SECONDS`` is 0)."""
    global _thread
    if settings.HOST_WATCH_SECONDS <= 0:
        return None
    with _started:
        if _thread is None:
            _thread = threading.Thread(
                target=watch, args=(threading.Event(),), name="host-watch", daemon=True
            )
            _thread.start()
    return _thread
