"""Enrolment: an agent on another machine gets its own credentials for a one-time token; an admin
can revoke them.

1. An admin adds the host (or asks for a new token for it): the token is shown once, only its
   SHA-256 is stored, it expires (:func:`issue_token`, :func:`add_host`).
2. On the host, ``manage.py agent --enrol TOKEN --console URL`` posts the token to
   ``/agent/enrol/``; :func:`exchange` gives back, once, the host's own credentials: a Redis
   user that reaches only its own queue (console.broker_acl), a PostgreSQL role limited to its
   own host's rows (console.db_roles), its host's signing key (console.signing). The agent keeps
   them in a file only root can read.
3. :func:`revoke` ends them at once: the Redis user is switched off and its connections closed,
   the PostgreSQL role may no longer log in and its sessions are ended, unused tokens are void,
   and no new operation is queued for the host until it is enrolled again.

PostgreSQL + Redis deployments only: on SQLite (one machine, the embedded default) agents share the
console's own settings and there is nothing to hand out.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from console import broker_acl, db_roles, signing
from console.choices import AuditResult, ConsoleAction, OperationStatus
from console.errors import Conflict, Forbidden, InvalidInput, ServiceError
from console.models import Host, HostEnrolment, Operation
from console.operations import RequestContext, audit, operation_request

SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
MIN_HOURS, MAX_HOURS = 1, 168


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def applies() -> bool:
    """Enrolment hands out PostgreSQL roles: it needs the console on PostgreSQL."""
    return db_roles.is_postgres()


def _hours(value: Any) -> int:
    # ASCII digits only: int() would also take "٥", "+5" and "1_0".
    text = str(value).strip()
    hours = int(text) if text.isascii() and text.isdigit() else 0
    if not MIN_HOURS <= hours <= MAX_HOURS:
        raise InvalidInput(
            f"a token is valid for {MIN_HOURS} to {MAX_HOURS} hours (a whole number)", field="hours"
        )
    return hours


def unused_tokens(host: Host) -> QuerySet[HostEnrolment]:
    return HostEnrolment.objects.filter(host=host, used_at__isnull=True, revoked_at__isnull=True)


def _new_token(actor: Any, host: Host, hours: int) -> tuple[HostEnrolment, str]:
    now = timezone.now()
    unused_tokens(host).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    enrolment = HostEnrolment.objects.create(
        host=host,
        token_hash=token_hash(token),
        created_by_name=actor.get_username()[:150],
        created_at=now,
        expires_at=now + timedelta(hours=hours),
    )
    return enrolment, token


def issue_token(*, actor: Any, ctx: RequestContext, host: Host, hours: Any) -> tuple[HostEnrolment, str]:
    """A new one-time token for ``host`` (its older unused ones become void). Admins of the host."""
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=ConsoleAction.HOST_ENROL_TOKEN,
        role="admin",
        host=host,
        target=f"host {host.slug}",
        params={"hours": str(hours)[:20]},
    ) as request:
        valid = _hours(hours)
        with transaction.atomic():
            enrolment, token = _new_token(actor, host, valid)
            request.done(after={"enrolment": enrolment.pk, "expires_at": enrolment.expires_at.isoformat()})
        return enrolment, token


def add_host(
    *, actor: Any, ctx: RequestContext, slug: str, name: str, hours: Any
) -> tuple[Host, HostEnrolment, str]:
    """A new managed host, with its first enrolment token. Superusers only."""
    params = {"slug": str(slug)[:80], "name": str(name)[:200], "hours": str(hours)[:20]}
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=ConsoleAction.HOST_ADD,
        role="super",
        host=None,
        target=f"host {str(slug)[:63]}",
        params=params,
    ) as request:
        slug, name = (slug or "").strip(), (name or "").strip()
        if not SLUG_RE.fullmatch(slug):
            raise InvalidInput("a host slug is 1-63 lowercase letters, digits and '-'", field="slug")
        if not name:
            name = slug
        if len(name) > 200 or any(ch in name for ch in "\n\r\x00<>"):
            raise InvalidInput("a host name is 1-200 characters on one line", field="name")
        valid = _hours(hours)
        if Host.objects.filter(slug=slug).exists():
            raise Conflict(f"a host '{slug}' exists already", field="slug")
        with transaction.atomic():
            host = Host.objects.create(slug=slug, name=name, lxc_path=settings.CONSOLE_DEFAULT_LXC_PATH)
            enrolment, token = _new_token(actor, host, valid)
            request.done(
                after={
                    "host": slug,
                    "enrolment": enrolment.pk,
                    "expires_at": enrolment.expires_at.isoformat(),
                }
            )
        return host, enrolment, token


def _address(setting: str, url: str, default_port: int) -> str:
    """host:port as agents reach it: the setting, else the console's own URL's."""
    configured = getattr(settings, setting, "")
    if configured:
        return configured
    parts = urlsplit(url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or default_port}"


def _admin_redis():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


def exchange(token: str, *, ip: str | None = None) -> dict[str, str]:
    """The token for the host's credentials, once. Every try is audited (never the token)."""
    ctx = RequestContext(ip=ip)
    found = HostEnrolment.objects.select_related("host").filter(token_hash=token_hash(token or "")).first()
    host = found.host if found else None
    try:
        if found is None or not found.is_usable:
            raise Forbidden(
                "this enrolment token is unknown, used, revoked or expired: ask an admin for a new one"
            )
        if not applies():
            raise ServiceError(
                "enrolment hands out a PostgreSQL role: the console runs on SQLite, where agents run "
                "on this machine with its own settings"
            )
        assert host is not None
        with transaction.atomic():
            # One exchange per token, even if two race.
            if not HostEnrolment.objects.filter(pk=found.pk, used_at__isnull=True).update(
                used_at=timezone.now(), used_from=ip
            ):
                raise Forbidden("this enrolment token was used already")
            db_password, redis_password = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            role = db_roles.create_or_reset(host.pk, db_password)
            client = _admin_redis()
            try:
                broker_acl.set_user(client, host.slug, redis_password)
                broker_acl.persist(client)
            finally:
                client.close()
            # A new signing key: whatever key an earlier enrolment handed out verifies nothing now.
            Host.objects.filter(pk=host.pk).update(
                enrolled_at=timezone.now(), revoked_at=None, key_generation=F("key_generation") + 1
            )
            host.refresh_from_db()
            for op in Operation.objects.select_related("host").filter(
                host=host, status=OperationStatus.PENDING
            ):
                signing.sign(op)
            redis_db = urlsplit(settings.REDIS_URL).path.lstrip("/") or "0"
            redis_user = quote(broker_acl.user_name(host.slug), safe="")
            redis_address = _address("AGENT_REDIS_ADDRESS", settings.REDIS_URL, 6379)
            db_url = db_roles.database_url(role, db_password)
            database_address = getattr(settings, "AGENT_DATABASE_ADDRESS", "")
            if database_address:
                parts = urlsplit(db_url)
                db_url = parts._replace(
                    netloc=f"{parts.netloc.rsplit('@', 1)[0]}@{database_address}"
                ).geturl()
            credentials = {
                "host": host.slug,
                "database_url": db_url,
                "redis_url": (
                    f"redis://{redis_user}:{quote(redis_password, safe='')}@{redis_address}/{redis_db}"
                ),
                "agent_key": signing.derive_host_key(host.slug, host.key_generation).hex(),
            }
            audit(
                actor=None,
                ctx=ctx,
                action=ConsoleAction.HOST_ENROL,
                result=AuditResult.SUCCEEDED,
                host=host,
                target=f"host {host.slug}",
                params={"enrolment": found.pk},
                after={"database_role": role, "redis_user": broker_acl.user_name(host.slug)},
            )
    except ServiceError as exc:
        audit(
            actor=None,
            ctx=ctx,
            action=ConsoleAction.HOST_ENROL,
            result=AuditResult.REFUSED,
            host=host,
            target=f"host {host.slug}" if host else "enrolment",
            message=exc.message,
        )
        raise
    return credentials


def revoke(*, actor: Any, ctx: RequestContext, host: Host, confirm: str) -> dict[str, Any]:
    """The host's credentials stop working now. Admins of the host; ``confirm`` is its slug."""
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=ConsoleAction.HOST_REVOKE,
        role="admin",
        host=host,
        target=f"host {host.slug}",
        params={"confirm": str(confirm)[:80]},
    ) as request:
        if (confirm or "").strip() != host.slug:
            raise InvalidInput(f"type {host.slug} exactly to confirm", field="confirm")
        now = timezone.now()
        with transaction.atomic():
            Host.objects.filter(pk=host.pk).update(revoked_at=now)
            host.revoked_at = now
            tokens = unused_tokens(host).update(revoked_at=now)
        after: dict[str, Any] = {"tokens_revoked": tokens}
        if applies() and host.enrolled_at is not None:
            # Outside a transaction: NOLOGIN is committed before its sessions are ended, so a
            # reconnecting agent is refused. (A host never enrolled, or any host on SQLite, where
            # agents use the console's own settings, has no user or role of its own.)
            try:
                after["database_connections_ended"] = db_roles.revoke(host.pk)
            except DatabaseError as exc:  # e.g. the console's role lacks pg_signal_backend
                after["database_role"] = f"not fully revoked: {exc}"[:300]
            try:
                client = _admin_redis()
                try:
                    broker_acl.disable_user(client, host.slug)
                    broker_acl.persist(client)
                finally:
                    client.close()
                after["redis_user"] = "disabled"
            except Exception as exc:  # the database side is revoked whatever Redis says
                after["redis_user"] = f"not disabled: {exc}"[:300]
        request.done(after=after)
        return after
