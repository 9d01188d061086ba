"""The one libvirt connection per host URI that an agent keeps open, and libvirt's event loop.

Only driver modules import ``libvirt``. Every libvirt call of the console goes through
:func:`call`: it opens the connection on first use, keeps it, and when libvirtd went away
(restarted, crashed) it drops the dead connection and tries once more on a fresh one. A daemon
that cannot be reached fails at once with :class:`LibvirtUnavailable` ("libvirtd is not running
on host X: ...") instead of hanging the operation.

libvirt delivers events (domain and network lifecycle) only through an event loop registered
before the connection is opened; :func:`ensure_event_loop` registers the default implementation
and runs it in a daemon thread. Code that wants events on every (re)opened connection adds a
function to :data:`ON_CONNECT`.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import libvirt

from console.runner import CommandError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Codes that mean "the connection itself is gone or was never there", not "the request failed".
_CONNECTION_CODES = {
    libvirt.VIR_ERR_SYSTEM_ERROR,
    libvirt.VIR_ERR_NO_CONNECT,
    libvirt.VIR_ERR_INVALID_CONN,
    libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_AUTH_FAILED,
}
# libvirt's own messages for a connection closed under us.
_CLOSED_WORDS = ("client socket is closed", "connection closed", "end of file while reading", "broken pipe")

_lock = threading.RLock()
_connections: dict[str, Any] = {}
_event_loop_started = False
# Called with (uri, connection) every time a connection is opened: event registrations.
ON_CONNECT: list[Callable[[str, Any], None]] = []


class LibvirtError(CommandError):
    """A libvirt call failed; ``argv`` is the equivalent ``virsh`` command, ``code`` libvirt's."""

    def __init__(self, message: str, *, argv: Sequence[str] = (), code: int | None = None, **kw: Any) -> None:
        super().__init__(message, argv=argv, **kw)
        self.code = code


class LibvirtUnavailable(LibvirtError):
    """libvirtd cannot be reached: nothing was changed; retrying after it starts can help."""


def _quiet(_ctx: object, _err: object) -> None:
    """libvirt prints every error on stderr by default; the console reports them itself."""


libvirt.registerErrorHandler(_quiet, None)


def virsh_argv(uri: str, *words: str) -> list[str]:
    """The ``virsh`` command line equivalent to a libvirt API call, for the operation transcript."""
    return ["virsh", "-c", uri, *words]


def ensure_event_loop() -> None:
    """Register libvirt's default event implementation and run it in a daemon thread (once)."""
    global _event_loop_started
    with _lock:
        if _event_loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                try:
                    libvirt.virEventRunDefaultImpl()
                except Exception:  # keep the loop alive: events are a convenience, the sync repairs
                    logger.exception("libvirt event loop iteration failed")

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _event_loop_started = True


def is_connection_error(exc: Exception) -> bool:
    if not isinstance(exc, libvirt.libvirtError):
        return False
    message = (exc.get_error_message() or str(exc)).lower()
    return exc.get_error_code() in _CONNECTION_CODES or any(word in message for word in _CLOSED_WORDS)


def _open(uri: str, host_label: str) -> Any:
    ensure_event_loop()
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise LibvirtUnavailable(
            f"libvirtd is not running on host {host_label}: {exc.get_error_message() or exc}",
            argv=virsh_argv(uri, "uri"),
            code=exc.get_error_code(),
        ) from None
    # Lets libvirt notice a dead daemon within seconds (test:/// has no keepalive).
    with contextlib.suppress(libvirt.libvirtError):
        conn.setKeepAlive(5, 3)

    def closed(_conn: Any, reason: int, _opaque: object) -> None:
        logger.warning("libvirt connection to %s closed (reason %s)", uri, reason)
        with _lock:
            if _connections.get(uri) is conn:
                del _connections[uri]

    with contextlib.suppress(libvirt.libvirtError):
        conn.registerCloseCallback(closed, None)
    for hook in list(ON_CONNECT):
        try:
            hook(uri, conn)
        except Exception:
            logger.exception("libvirt on-connect hook failed for %s", uri)
    return conn


def connection(uri: str, host_label: str = "") -> Any:
    """The open connection to ``uri``, opened now if there is none (or the last one died)."""
    with _lock:
        conn = _connections.get(uri)
        if conn is not None:
            try:
                alive = conn.isAlive()
            except libvirt.libvirtError:
                alive = False
            if alive:
                return conn
            _drop(uri)
        conn = _open(uri, host_label or uri)
        _connections[uri] = conn
        return conn


def _drop(uri: str) -> None:
    conn = _connections.pop(uri, None)
    if conn is not None:
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()


def forget(uri: str) -> None:
    """Close and forget the connection to ``uri`` (tests; an agent that stops)."""
    with _lock:
        _drop(uri)


def call(
    uri: str,
    func: Callable[[Any], T],
    *,
    host_label: str = "",
    virsh: Sequence[str] = (),
    message: str = "",
) -> T:
    """Run ``func(conn)``; reconnect once when the connection turns out to be dead.

    A libvirt error becomes :class:`LibvirtError` carrying libvirt's message and the equivalent
    ``virsh`` words (for the transcript and the error shown)."""
    label = host_label or uri
    for attempt in (1, 2):
        conn = connection(uri, label)
        try:
            return func(conn)
        except libvirt.libvirtError as exc:
            if attempt == 1 and is_connection_error(exc):
                logger.info("libvirt connection to %s looks dead (%s); reconnecting once", uri, exc)
                with _lock:
                    if _connections.get(uri) is conn:
                        _drop(uri)
                continue
            detail = exc.get_error_message() or str(exc)
            if is_connection_error(exc):
                raise LibvirtUnavailable(
                    f"libvirtd is not running on host {label}: {detail}",
                    argv=virsh_argv(uri, *virsh),
                    code=exc.get_error_code(),
                ) from None
            raise LibvirtError(
                f"{message}: {detail}" if message else detail,
                argv=virsh_argv(uri, *virsh),
                code=exc.get_error_code(),
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def const(name: str) -> int:
    """A libvirt constant by name (``VIR_DOMAIN_RUNNING``)."""
    return int(getattr(libvirt, name))


def register_lifecycle_events(
    conn: Any,
    on_domain: Callable[[str, int], None],
    on_network: Callable[[str, int], None],
) -> None:
    """Call ``on_domain(name, event)`` / ``on_network(name, event)`` on every lifecycle event of ``conn``.

    The callbacks run in the event-loop thread: they must only hand the name on, not do work."""

    def domain_event(_conn: Any, dom: Any, event: int, _detail: int, _opaque: object) -> None:
        on_domain(dom.name(), event)

    def network_event(_conn: Any, net: Any, event: int, _detail: int, _opaque: object) -> None:
        on_network(net.name(), event)

    conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, domain_event, None)
    conn.networkEventRegisterAny(None, libvirt.VIR_NETWORK_EVENT_ID_LIFECYCLE, network_event, None)


def logged_call(
    runner: Any,
    uri: str,
    words: list[str],
    func: Callable[[Any], T],
    *,
    host_label: str = "",
    message: str = "",
    record: bool = True,
) -> T:
    """:func:`call`, with the equivalent ``virsh`` line in the operation's transcript and commands."""
    import time

    if not record:
        return call(uri, func, host_label=host_label, virsh=words, message=message)
    argv = virsh_argv(uri, *words)
    runner.log("$ " + shlex.join(argv))
    started = time.monotonic()
    status = 1
    try:
        result = call(uri, func, host_label=host_label, virsh=words, message=message)
        status = 0
        return result
    except LibvirtError as exc:
        runner.log(f"error: {exc.message}")
        raise
    finally:
        runner._record_command(argv, status, time.monotonic() - started)
