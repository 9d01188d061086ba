"""The agent's task: run one Operation with the handler registered for its kind."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from celery import shared_task
from django.db import models

from console import agent, busy, signing
from console.choices import AuditResult, ConsoleAction, OperationStatus
from console.errors import ServiceError
from console.models import Operation
from console.recovery import checking, is_supervised
from console.runner import CommandCancelled, CommandError, Runner

logger = logging.getLogger(__name__)

Handler = Callable[[Operation, Runner], "dict[str, Any] | None"]
HANDLERS: dict[str, Handler] = {}


def operation_handler(kind: models.TextChoices) -> Callable[[Handler], Handler]:
    """Register the function that carries out operations of ``kind`` on the agent.

    ``kind`` is a member of an app's kinds (``ContainerOp``, ``StorageOp``, ...), never a bare
    string, and has one handler: a second registration is a programming error."""
    if not isinstance(kind, models.TextChoices):
        raise TypeError(f"{kind!r}: declare operation kinds as TextChoices in the app's choices.py")

    def register(func: Handler) -> Handler:
        known = HANDLERS.get(kind)
        if known is not None and (known.__module__, known.__qualname__) != (
            func.__module__,
            func.__qualname__,
        ):
            raise ValueError(f"{kind} has a handler already: {known.__module__}.{known.__qualname__}")
        HANDLERS[kind] = func
        return func

    return register


@contextmanager
def refresh_on_failure(refresh: Callable[[], object]) -> Iterator[None]:
    """After a failure the inventory must still show what the host really has: ``refresh`` runs
    (its own error swallowed: the original one is what the user needs), then the error goes on."""
    try:
        yield
    except Exception:
        with suppress(Exception):
            refresh()
        raise


def execute(op: Operation, *, worker: str = "", runner: Runner | None = None) -> Operation:
    """Run ``op`` here, now: mark it running, call its handler, record the outcome.

    ``runner`` is the agent's local one unless given (the VM test tier passes a runner bound to
    the operation whose commands run in a VM)."""
    if not op.claim(worker):
        logger.info("operation %s is no longer pending; skipped", op.pk)
        return op
    # The reads event watchers ask for on its target meanwhile wait for its own (console.busy).
    with busy.running(op.lock_key):
        _run_handler(op, runner or Runner(op, supervised=is_supervised(op.kind)))
    op.refresh_from_db()
    return op


def _run_handler(op: Operation, runner: Runner) -> None:
    """Call ``op``'s handler and make it terminal with the outcome."""
    handler = HANDLERS.get(op.kind)
    try:
        if handler is None:
            raise ServiceError(f"this agent does not know how to run '{op.kind}' operations")
        result = handler(op, runner) or {}
    except (CommandError, ServiceError) as exc:
        if runner.cancelled_by:
            # Cancelled while it ran: the driver cleaned up as after a failure.
            reason = (
                exc.message
                if isinstance(exc, CommandCancelled)
                else (f"cancelled by {runner.cancelled_by}; then: {exc.message}")
            )
            runner.log(f"# cancelled: {reason}")
            op.finish(OperationStatus.CANCELLED, error=reason)
        else:
            runner.log(f"# failed: {exc.message}")
            op.finish(OperationStatus.FAILED, error=exc.message)
    except Exception as exc:  # a bug must still end the operation and release its lock
        # The traceback (code paths, frames) goes to the agent's log only: viewers of the host
        # read the operation's error and log, and they get the reason.
        logger.exception("operation %s crashed", op.pk)
        reason = internal_error(exc)
        runner.log(f"# failed: {reason}")
        op.finish(OperationStatus.FAILED, error=reason)
    else:
        op.finish(OperationStatus.SUCCEEDED, result=result)
    finally:
        runner.sink.flush()


def internal_error(exc: BaseException) -> str:
    """What an unexpected error says to the user: its type and message on one line, no traceback."""
    message = " ".join(str(exc).split())[:500]
    return f"internal error: {type(exc).__name__}" + (f": {message}" if message else "")


def record_refusal(action: str, *, target: str, message: str, params: dict | None = None) -> None:
    """An audit row (result refused) of what this agent would not run, on its own host: admins
    see it on the Audit page. Agents may only insert audit rows."""
    from console.models import AuditEvent, Host

    me = agent.current_host_slug() or ""
    logger.warning("refused: %s: %s", target, message)
    AuditEvent.objects.create(
        actor=None,
        actor_name=f"agent {me}"[:150],
        action=action,
        host=Host.objects.filter(slug=me).first(),
        target=target[:255],
        params=params or {},
        result=AuditResult.REFUSED,
        message=message,
    )


def run_verified(op: Operation) -> str:
    """Run ``op`` (pending, of this agent's host) if its stored signature verifies; otherwise run
    nothing, end it failed and record why. The one gate of the message and the database claim."""
    if signing.verifies(op):
        return execute(op, worker=agent.worker_name()).status
    reason = "its signature does not verify (not queued by the console, or altered): nothing was run"
    if op.claim(agent.worker_name()):
        op.finish(OperationStatus.FAILED, error=reason)
    record_refusal(
        ConsoleAction.AGENT_OPERATION_REFUSED,
        target=f"operation #{op.pk}",
        message=reason,
        params={"kind": op.kind, "target": op.target},
    )
    return "refused"


@shared_task(name="console.run_operation", acks_late=False)  # see CELERY_TASK_ACKS_LATE
def run_operation(operation_id: Any, host: Any = None, kind: Any = None, signature: Any = None) -> str:
    """The broker's wake-up for one operation. The agent also claims pending operations from the
    database (console.agent), and only one claim succeeds: a message delivered twice, or a message
    and the claim, run it once.

    The message must name an operation of this agent's host that exists in the database, with its
    kind and signature (console.signing); it is only a wake-up, what runs is the row. A message that
    names no such operation (forged), or one that is no longer pending (replayed), runs nothing and
    is recorded."""
    me = agent.current_host_slug()
    sent = {"operation": str(operation_id)[:40], "host": str(host)[:80], "kind": str(kind)[:80]}
    op = None
    if isinstance(operation_id, int) and not isinstance(operation_id, bool):
        op = Operation.objects.select_related("host").filter(pk=operation_id, host__slug=me).first()
    target = f"operation #{sent['operation']}"
    if op is None:
        record_refusal(
            ConsoleAction.AGENT_MESSAGE_REFUSED,
            target=target,
            message=f"no such operation of host '{me}' in the database: nothing was run",
            params=sent,
        )
        return "refused"
    if (
        host != me
        or kind != op.kind
        or not isinstance(signature, str)
        or not op.signature
        or not hmac.compare_digest(signature, op.signature)
    ):
        record_refusal(
            ConsoleAction.AGENT_MESSAGE_REFUSED,
            target=target,
            message="the message's host, kind or signature is not the operation's: nothing was run",
            params=sent,
        )
        return "refused"
    if op.status != OperationStatus.PENDING:
        if op.status == OperationStatus.RUNNING and op.worker == agent.worker_name():
            return op.status  # this agent claimed it from the database just before the message came
        record_refusal(
            ConsoleAction.AGENT_MESSAGE_REFUSED,
            target=target,
            message=f"the operation is {op.status}: a replayed or late message; nothing was run",
            params=sent,
        )
        return op.status
    if op.lock_key in checking():
        # An earlier operation on its target is being checked (console.recovery): the agent's
        # claim from the database runs this one after that.
        return "deferred"
    return run_verified(op)
