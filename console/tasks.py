"""The agent's task: run one Operation with the handler registered for its kind."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from celery import shared_task
from django.db import models

from console import agent
from console.choices import OperationStatus
from console.errors import ServiceError
from console.models import Operation
from console.recovery import is_supervised
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
    runner = runner or Runner(op, supervised=is_supervised(op.kind))
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
    op.refresh_from_db()
    return op


def internal_error(exc: BaseException) -> str:
    """What an unexpected error says to the user: its type and message on one line, no traceback."""
    message = " ".join(str(exc).split())[:500]
    return f"internal error: {type(exc).__name__}" + (f": {message}" if message else "")


@shared_task(name="console.run_operation", acks_late=True)
def run_operation(operation_id: int) -> str:
    """The broker's wake-up for one operation. The agent also claims pending operations from the
    database (console.agent), and only one claim succeeds: a message delivered twice, or a message
    and the claim, run it once."""
    op = Operation.objects.select_related("host").filter(pk=operation_id).first()
    if op is None:
        return "missing"
    if op.status != "pending":
        return op.status  # run already (or cancelled): nothing to do, no write
    me = agent.current_host_slug()
    if me != op.host.slug:
        # Queues are per host, so this means a misconfigured agent: never act on another host.
        op.finish(
            OperationStatus.FAILED,
            error=f"delivered to the agent of host '{me}', not of '{op.host.slug}'; nothing was run",
        )
        return "wrong-host"
    return execute(op, worker=agent.worker_name()).status
