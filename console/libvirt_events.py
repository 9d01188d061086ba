"""libvirt lifecycle events on the agent: one connection keeper and one worker for every app.

Apps say what to refresh per kind of object (``REFRESHERS["domain"]`` is containers',
``REFRESHERS["network"]`` networks'); the watcher refreshes that row as soon as libvirt reports
an event for it. The periodic syncs (``INVENTORY_SYNCERS``) stay the safety net under the events.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import close_old_connections

from console.drivers import libvirt_conn
from console.drivers.libvirt_conn import LibvirtUnavailable
from console.models import Host

logger = logging.getLogger(__name__)
T = TypeVar("T")

# kind ("domain", "network") -> refresh(host, name): registered by the apps' ready().
REFRESHERS: dict[str, Callable[[Host, str], object]] = {}
_events: queue.Queue[tuple[str, str] | None] = queue.Queue()


def libvirt_enabled(host: Host) -> bool:
    caps = host.capabilities or {}
    return bool(host.libvirt_uri) and caps.get("libvirt", {}).get("available", True) is not False


def serialised(lock: threading.RLock) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Calls of the decorated functions one at a time under ``lock`` (one lock per kind of row):
    operations, the event worker and the periodic sync upsert the same rows from threads of one
    agent process, and two of them at once insert the same new row."""

    def decorate(func: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            with lock:
                return func(*args, **kwargs)

        return wrapper

    return decorate


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
    if not libvirt_enabled(host):
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
            refresh = REFRESHERS.get(kind)
            if refresh is None:
                continue
            try:
                refresh(Host.objects.get(pk=host.pk), name)
            except Exception:
                logger.exception("libvirt event refresh of %s %s failed", kind, name)
            finally:
                close_old_connections()

    threading.Thread(target=keep, name="libvirt-keeper", daemon=True).start()
    threading.Thread(target=work, name="libvirt-events-worker", daemon=True).start()
