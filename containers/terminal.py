"""Browser terminals: tickets (web), the session bookkeeping, and the agent's pty relay.

The web process never runs a host command: it relays bytes between the browser's websocket
and two Redis lists; the host's agent, as an Operation, runs ``lxc-attach`` in a
pseudo-terminal (native containers) or opens the domain's console stream through
libvirt-python (libvirt domains, what ``virsh console`` does) and relays the other way.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import secrets
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable
from datetime import timedelta
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from console import access
from console.choices import AuditResult
from console.errors import Conflict, Forbidden, NotFound
from console.models import Operation
from console.operations import RequestContext, audit, audited_refusal, start_operation
from console.runner import CommandError, Runner
from containers.choices import Backend, ContainerAction, ContainerOp, State
from containers.models import Container, TerminalTicket

TICKET_SECONDS = 30


def in_key(slug: str, op_id: int) -> str:
    return f"terminal:{slug}:{op_id}:in"


def out_key(slug: str, op_id: int) -> str:
    return f"terminal:{slug}:{op_id}:out"


def exit_key(slug: str, op_id: int) -> str:
    return f"terminal:{slug}:{op_id}:exit"


def session_hash(session_key: str | None) -> str:
    """What a ticket stores of the session it was issued to (never the session key itself)."""
    return hashlib.sha256(session_key.encode()).hexdigest() if session_key else ""


def session_user(session_key: str | None) -> Any:
    """The user whose live session ``session_key`` is, as Django's auth middleware would
    find it (expired sessions, logged-out ones and changed passwords give AnonymousUser)."""
    from django.contrib.auth import get_user
    from django.contrib.auth.models import AnonymousUser

    if not session_key:
        return AnonymousUser()
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return get_user(SimpleNamespace(session=store))  # type: ignore[arg-type]  # get_user reads only .session


def issue_ticket(
    *, actor: Any, ctx: RequestContext, container: Container, origin: str, session_key: str | None
) -> TerminalTicket:
    """A single-use ticket, valid TICKET_SECONDS, for ``actor`` on ``container`` (operators and up),
    usable only from the origin and the browser session that asked for it."""
    params = {"name": container.name, "origin": origin}
    with audited_refusal(
        actor=actor,
        ctx=ctx,
        action=ContainerAction.TERMINAL_TICKET,
        host=container.host,
        target=container.target,
        params=params,
    ):
        access.require(actor, "operate", container.host)
        if not session_key:
            raise Forbidden("a terminal needs a logged-in browser session")
        if container.state != State.RUNNING:
            raise Conflict(
                f"{container.name} is {container.state.lower()}: a terminal needs a running container"
            )
        with transaction.atomic():
            ticket = TerminalTicket.objects.create(
                token=secrets.token_urlsafe(32),
                user=actor,
                container=container,
                origin=origin[:255],
                session_hash=session_hash(session_key),
                expires_at=timezone.now() + timedelta(seconds=TICKET_SECONDS),
            )
            audit(
                actor=actor,
                ctx=ctx,
                action=ContainerAction.TERMINAL_TICKET,
                result=AuditResult.SUCCEEDED,
                host=container.host,
                target=container.target,
                params=params,
            )
        return ticket


def open_session(
    *, token: str | None, origin: str, origin_ok: bool, session_key: str | None, ctx: RequestContext
) -> Operation:
    """Spend the ticket and queue the session: once, before it expires, from the origin and the
    browser session it was issued to. Every refusal writes a refused ``container.terminal``
    audit row saying why, in the name of the session's user when there is one."""
    user = session_user(session_key)
    ticket = (
        TerminalTicket.objects.select_related("user", "container__host").filter(token=token).first()
        if token
        else None
    )
    container = ticket.container if ticket else None
    with audited_refusal(
        actor=user if user.is_authenticated else None,
        ctx=ctx,
        action=ContainerOp.TERMINAL,
        host=container.host if container else None,
        target=container.target if container else "",
        # a prefix names the ticket in the trail without keeping a usable secret
        params={"ticket": (token or "")[:8], "origin": origin[:255]},
    ):
        if ticket is None or container is None:
            raise NotFound("this terminal ticket is unknown: open the terminal again")
        if not origin_ok or ticket.origin != origin:
            raise Forbidden("the terminal was opened from another origin")
        same_session = constant_time_compare(ticket.session_hash, session_hash(session_key))
        if user.pk != ticket.user_id or not same_session:
            raise Forbidden("this terminal ticket belongs to another browser session: open the terminal anew")
        now = timezone.now()
        unspent = TerminalTicket.objects.filter(pk=ticket.pk, used_at__isnull=True, expires_at__gt=now)
        claimed = unspent.update(used_at=now)
        if not claimed:
            ticket.refresh_from_db()
            spent = "was already used" if ticket.used_at else "has expired"
            raise NotFound(f"this terminal ticket {spent}: open the terminal again")
        access.require(ticket.user, "operate", container.host)  # the role may have changed since
    params = {
        "name": container.name,
        "lxc_path": container.lxc_path,
        "backend": container.backend,
        "libvirt_uri": container.host.libvirt_uri,
    }
    op = start_operation(
        actor=ticket.user,
        ctx=ctx,
        host=container.host,
        kind=ContainerOp.TERMINAL,
        target=container.target,
        lock_key=f"{container.lock_key}:terminal:{ticket.pk}",
        params=params,
    )
    # The accepted ContainerOp.TERMINAL audit row written with the operation is the session's opening.
    TerminalTicket.objects.filter(pk=ticket.pk).update(operation=op)
    return op


def close_session(*, op: Operation, ctx: RequestContext, reason: str) -> None:
    op.refresh_from_db()
    seconds = (timezone.now() - op.created_at).total_seconds()
    audit(
        actor=op.actor,
        ctx=ctx,
        action=ContainerAction.TERMINAL_CLOSE,
        result=AuditResult.SUCCEEDED,
        host=op.host,
        target=op.target,
        params={"reason": reason},
        after={"seconds": round(seconds, 1)},
        operation=op,
    )


# --- agent side -------------------------------------------------------------------------------


def terminal_argv(params: dict) -> list[str]:
    from console.identifiers import validate_container_name

    name = validate_container_name(params["name"])
    return ["lxc-attach", "-P", params["lxc_path"], "-n", name]


def relay(op: Operation, runner: Runner) -> dict[str, Any]:
    """Run the console program in a pty and relay it through Redis until either side ends."""
    import redis

    r = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return _relay(op, runner, r)
    except Exception as exc:
        # The page is waiting for the session: tell it why there is none.
        _announce_exit(r, op, -1, str(exc)[:300])
        raise


def _relay(op: Operation, runner: Runner, r: Any) -> dict[str, Any]:
    if op.params.get("backend") == Backend.LIBVIRT:
        return _relay_console_stream(op, runner, r)
    argv = terminal_argv(op.params)
    runner.log("$ " + " ".join(argv) + "   (interactive, in a pseudo-terminal)")
    master, slave = pty.openpty()
    _set_size(master, 30, 100)
    try:
        proc = subprocess.Popen(  # argv list
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd="/",
            close_fds=True,
            # A session of its own with the pty as its controlling terminal: lxc-attach and
            # virsh console only proxy a terminal they control.
            start_new_session=True,
            preexec_fn=_take_controlling_tty,  # runs after setsid in the child
        )
    except FileNotFoundError as exc:
        os.close(master)
        os.close(slave)
        raise CommandError(f"{argv[0]} is not installed on this host", argv=argv) from exc
    os.close(slave)

    def read_pty() -> bytes | None:
        ready, _, _ = select.select([master], [], [], 0.05)
        if not ready:
            return b""
        try:
            return os.read(master, 65536) or None
        except OSError:  # the program closed its terminal
            return None

    started = time.monotonic()
    try:
        reason = (
            _pump(
                op,
                r,
                alive=lambda: proc.poll() is None,
                read=read_pty,
                write=lambda data: os.write(master, data),
                resize=lambda rows, cols: _set_size(master, rows, cols),
            )
            or "the program ended"
        )
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGHUP)
                proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        os.close(master)
    _announce_exit(r, op, proc.returncode, reason)
    seconds = round(time.monotonic() - started, 1)
    runner.log(f"# session ended after {seconds} s: {reason} (exit status {proc.returncode})")
    return {"exit": proc.returncode, "seconds": seconds, "reason": reason}


def _relay_console_stream(op: Operation, runner: Runner, r: Any) -> dict[str, Any]:
    """A libvirt domain's console: the same relay over a libvirt stream instead of a pty."""
    from containers.drivers.libvirt import ConsoleStream

    uri, name = op.params["libvirt_uri"], op.params["name"]
    runner.log(f"$ virsh -c {uri} console {name}   (interactive, through libvirt's console stream)")
    console = ConsoleStream(uri, name, host_label=op.host.slug)

    def read_stream() -> bytes | None:
        data = console.read()
        if console.ended:
            return None
        if not data:
            time.sleep(0.05)
        return data

    started = time.monotonic()
    try:
        reason = _pump(op, r, alive=lambda: not console.ended, read=read_stream, write=console.write)
        reason = reason or "the console closed"
    finally:
        console.close()
    _announce_exit(r, op, 0, reason)
    seconds = round(time.monotonic() - started, 1)
    runner.log(f"# session ended after {seconds} s: {reason}")
    return {"exit": 0, "seconds": seconds, "reason": reason}


def _pump(
    op: Operation,
    r: Any,
    *,
    alive: Callable[[], bool],
    read: Callable[[], bytes | None],
    write: Callable[[bytes], Any],
    resize: Callable[[int, int], None] | None = None,
) -> str | None:
    """Relay between the program and the Redis lists until it ends (None), the browser closes the
    terminal, or no input comes for TERMINAL_IDLE_SECONDS; returns why the relay stopped.

    ``read`` waits at most a moment and returns b"" when there is nothing, None at the end."""
    last_input = time.monotonic()
    while alive():
        if time.monotonic() - last_input > settings.TERMINAL_IDLE_SECONDS:
            return "idle for too long"
        data = read()
        if data is None:
            return None
        if data:
            r.rpush(out_key(op.host.slug, op.pk), data)
            r.expire(out_key(op.host.slug, op.pk), 300)
        for raw in r.lpop(in_key(op.host.slug, op.pk), 100) or []:
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "input":
                write(str(message.get("data", ""))[:65536].encode())
                last_input = time.monotonic()
            elif kind == "resize" and resize is not None:
                resize(int(message.get("rows", 30)), int(message.get("cols", 100)))
            elif kind == "close":
                return "the browser closed the terminal"
    return None


def _announce_exit(r: Any, op: Operation, code: int | None, reason: str) -> None:
    """Tell the web side (waiting on the exit list) that the session is over, and why."""
    r.rpush(exit_key(op.host.slug, op.pk), json.dumps({"code": code, "reason": reason}))
    r.expire(exit_key(op.host.slug, op.pk), 300)
    r.delete(in_key(op.host.slug, op.pk))


def _take_controlling_tty() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _set_size(fd: int, rows: int, cols: int) -> None:
    rows, cols = max(2, min(rows, 500)), max(10, min(cols, 1000))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
