"""The one path for every change: authorize, audit a refusal, lock, record, enqueue on commit.

Every service opens :func:`operation_request`: it checks the actor's role (the one check of the
path), and any :class:`ServiceError` raised inside becomes a refused audit row. Inside, the
service validates its input, then either queues the operation (:meth:`OperationRequest.queue`:
the ``Operation`` and its ``AuditEvent`` in one transaction, relying on the database's partial
unique index for "one active operation per target", the Celery task sent only once the
transaction has committed) or records a change it made in the request itself
(:meth:`OperationRequest.done`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction

from console import access, signing
from console.choices import AuditResult
from console.errors import Busy, Conflict, ServiceError
from console.models import AuditEvent, Host, Operation

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequestContext:
    """Who asked, from where: what an audit row needs from the request.

    ``request_id`` is the server's own id of the request; ``client_request_id`` what the client
    sent as X-Request-ID (validated), for correlation only. ``written`` collects the audit rows
    written for the request, so :func:`console.decorators.audited_post` knows whether a service
    wrote one without asking the audit table (a request id chosen by a client must never decide
    that)."""

    ip: str | None = None
    request_id: str = ""
    client_request_id: str = ""
    written: list[int] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_request(cls, request: Any) -> RequestContext:
        return cls(
            ip=getattr(request, "client_ip", None),
            request_id=getattr(request, "request_id", ""),
            client_request_id=getattr(request, "client_request_id", ""),
            written=audit_rows_of(request),
        )


def audit_rows_of(request: Any) -> list[int]:
    """The ids of the audit rows written for ``request`` so far (one list per request)."""
    rows = getattr(request, "audit_rows", None)
    if rows is None:
        rows = []
        request.audit_rows = rows
    return rows


SYSTEM = RequestContext()


def _actor_name(actor: Any) -> str:
    if actor is None:
        return "system"
    return actor.get_username()


def audit(
    *,
    actor: Any,
    ctx: RequestContext,
    action: str,
    result: str,
    host: Host | None = None,
    target: str = "",
    params: dict | None = None,
    before: Any = None,
    after: Any = None,
    message: str = "",
    operation: Operation | None = None,
) -> AuditEvent:
    event = AuditEvent.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=_actor_name(actor),
        ip=ctx.ip,
        request_id=ctx.request_id,
        client_request_id=ctx.client_request_id,
        action=action,
        host=host,
        target=target,
        params=params or {},
        before=before,
        after=after,
        result=result,
        message=message,
        operation=operation,
    )
    if ctx.written is not None:
        ctx.written.append(event.pk)
    return event


@contextmanager
def audited_refusal(
    *,
    actor: Any,
    ctx: RequestContext,
    action: str,
    host: Host | None = None,
    target: str = "",
    params: dict | None = None,
) -> Iterator[None]:
    """Record a refused request (bad input, busy, forbidden) as an audit row, then re-raise."""
    try:
        yield
    except ServiceError as exc:
        audit(
            actor=actor,
            ctx=ctx,
            action=action,
            result=AuditResult.REFUSED,
            host=host,
            target=target,
            params=params,
            message=exc.message,
        )
        raise


@dataclass
class OperationRequest:
    """One authorized request of ``actor`` for ``kind`` on ``target``: what it ends with."""

    actor: Any
    ctx: RequestContext
    kind: str
    host: Host | None
    target: str
    params: dict

    def queue(
        self,
        *,
        lock_key: str,
        params: dict,
        before: Any = None,
        after: Any = None,
        audit_params: dict | None = None,
        target: str | None = None,
        kind: str | None = None,
    ) -> Operation:
        """Lock the target, write the Operation and its accepted audit row, enqueue on commit."""
        assert self.host is not None, "an operation runs on a host"
        return start_operation(
            actor=self.actor,
            ctx=self.ctx,
            host=self.host,
            kind=kind or self.kind,
            target=target or self.target,
            lock_key=lock_key,
            params=params,
            before=before,
            after=after,
            audit_params=audit_params,
        )

    def done(
        self, *, before: Any = None, after: Any = None, params: dict | None = None, target: str | None = None
    ) -> AuditEvent:
        """The succeeded audit row of a change made in the request itself (no host command);
        call it in the transaction that makes the change."""
        return audit(
            actor=self.actor,
            ctx=self.ctx,
            action=self.kind,
            result=AuditResult.SUCCEEDED,
            host=self.host,
            target=self.target if target is None else target,
            params=self.params if params is None else params,
            before=before,
            after=after,
        )


@contextmanager
def operation_request(
    *,
    actor: Any,
    ctx: RequestContext,
    kind: str,
    role: str,
    host: Host | None,
    target: str,
    params: dict | None = None,
) -> Iterator[OperationRequest]:
    """Authorize ``actor`` for ``role`` on ``host`` ("super": superusers only) and audit any
    refusal raised inside (bad input, busy, forbidden) with ``params`` as the request gave them."""
    request = OperationRequest(actor, ctx, kind, host, target[:255], dict(params or {}))
    with audited_refusal(
        actor=actor, ctx=ctx, action=kind, host=host, target=request.target, params=request.params
    ):
        if role == "super":
            access.require_superuser(actor)
        else:
            access.require(actor, role, host)
        yield request


def active_operation(lock_key: str) -> Operation | None:
    return Operation.objects.active(lock_key)


def start_operation(
    *,
    actor: Any,
    ctx: RequestContext,
    host: Host,
    kind: str,
    target: str,
    lock_key: str,
    params: dict,
    before: Any = None,
    after: Any = None,
    audit_params: dict | None = None,
) -> Operation:
    """Create the operation and its audit row atomically; enqueue it when the transaction commits."""
    if host.revoked_at is not None:
        raise Conflict(
            f"the credentials of host {host.slug} were revoked: nothing is queued for it until it is "
            "enrolled again"
        )
    existing = active_operation(lock_key)
    if existing is not None:
        raise Busy(
            f"busy: operation #{existing.pk} ({existing.kind}) is {existing.status} on {target}",
            operation_id=existing.pk,
        )
    try:
        with transaction.atomic():
            op = Operation.objects.create(
                kind=kind,
                actor=actor if getattr(actor, "pk", None) else None,
                host=host,
                target=target,
                lock_key=lock_key,
                params=params,
                celery_id=str(uuid.uuid4()),
            )
            signing.sign(op)
            audit(
                actor=actor,
                ctx=ctx,
                action=kind,
                result=AuditResult.ACCEPTED,
                host=host,
                target=target,
                params=audit_params if audit_params is not None else params,
                before=before,
                after=after,
                operation=op,
            )
            transaction.on_commit(op.enqueue)
    except IntegrityError as exc:
        # Lost a race with another request for the same target.
        existing = active_operation(lock_key)
        raise Busy(
            f"busy: operation #{existing.pk if existing else '?'} is running on {target}",
            operation_id=existing.pk if existing else None,
        ) from exc
    return op
