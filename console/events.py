"""Push: every change of an operation or a container row is published on one Redis pub/sub channel,
and each open page's event stream (console.stream) relays the events it may see to the browser.

An event is small JSON: ``{"kind": "operation", "id": 7, "host_id": 1, "lock_key": ..., "status":
...}`` or ``{"kind": "container", "id": 3, "host_id": 1}``. It says only *what* changed; the page
fetches the panel as before. Publishing never fails a write: Redis down means pages learn the
change from their slow fallback poll. It runs when the transaction commits, so a page that reacts
reads the new row.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

CHANNEL = "console:events"
# Progress and log lines of one operation: at most one event per this many seconds (the last one
# of a burst is sent when its window ends, so the page never misses the final figure).
MIN_INTERVAL = 0.25
# After Redis could not be reached, publishing is skipped this long (a write never waits on a
# dead Redis more than once per window).
RETRY_AFTER = 5.0

_lock = threading.Lock()
_client: Any = None
_down_until = 0.0
_last_sent: dict[int, float] = {}
_trailing: dict[int, threading.Timer] = {}


def _redis() -> Any:
    global _client
    if _client is None:
        import redis

        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
    return _client


def publish(kind: str, id: int, host_id: int | None, **extra: Any) -> bool:
    """Send one event now; False (logged) if Redis could not take it."""
    global _down_until
    if time.monotonic() < _down_until:
        return False
    message = json.dumps({"kind": kind, "id": id, "host_id": host_id, **extra}, default=str)
    try:
        _redis().publish(CHANNEL, message)
    except Exception as exc:  # any failure of Redis must not fail the write that caused it
        _down_until = time.monotonic() + RETRY_AFTER
        logger.warning("could not publish a %s event (pages fall back to polling): %s", kind, exc)
        return False
    return True


def reset() -> None:
    """Forget the client and the down window (tests; settings.REDIS_URL changed)."""
    global _client, _down_until
    with _lock:
        _client = None
        _down_until = 0.0
        _last_sent.clear()
        for timer in _trailing.values():
            timer.cancel()
        _trailing.clear()


def after_commit(kind: str, id: int, host_id: int | None, **extra: Any) -> None:
    """Publish when the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: publish(kind, id, host_id, **extra))


def operation_event(op: Any, *, throttled: bool = False) -> None:
    """An operation changed. ``throttled`` (progress, log): at most one per MIN_INTERVAL per
    operation, the last of a burst sent at the end of its window."""
    fields: dict[str, Any] = {"lock_key": op.lock_key, "status": op.status}
    if throttled:
        fields["minor"] = True  # progress or log only: the lists need not refresh
    else:
        with _lock:
            _last_sent[op.pk] = time.monotonic()
        after_commit("operation", op.pk, op.host_id, **fields)
        return
    with _lock:
        now = time.monotonic()
        wait = _last_sent.get(op.pk, 0.0) + MIN_INTERVAL - now
        if wait <= 0:
            _last_sent[op.pk] = now
        elif op.pk in _trailing:
            return  # a trailing event is due already
        else:
            timer = threading.Timer(wait, _send_trailing, args=(op.pk, op.host_id, fields))
            timer.daemon = True
            _trailing[op.pk] = timer
            timer.start()
            return
    after_commit("operation", op.pk, op.host_id, **fields)


def _send_trailing(op_id: int, host_id: int, fields: dict) -> None:
    with _lock:
        _trailing.pop(op_id, None)
        _last_sent[op_id] = time.monotonic()
        if len(_last_sent) > 10_000:  # an agent runs for months: forget old operations
            _last_sent.clear()
    publish("operation", op_id, host_id, **fields)


def lxc_state_event(host_id: int, lxc_path: str, name: str, state: str) -> None:
    """A line of ``lxc-monitor`` on the agent, passing states included (STARTING, STOPPING,
    FREEZING, ...): the host's monitor page shows each as it arrives. Sent at once (no row is
    written for a passing state, so there is no transaction to wait for)."""
    from django.utils import timezone

    at = timezone.localtime().strftime("%H:%M:%S")
    publish("lxc-state", host_id, host_id, lxc_path=lxc_path, name=name, state=state, at=at)


def container_event(container: Any) -> None:
    after_commit("container", container.pk, container.host_id)
