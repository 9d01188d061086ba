"""Operations signed by the web side, verified by the agent of their host.

Every operation row carries ``signature``: an HMAC-SHA256, under its host's key, of what the agent
would run (id, host, kind, target, lock key, parameters). The host's key is derived from the
console's master key::

    host_key(slug) = HMAC-SHA256(master, "console host key v1\\0" + slug [+ "\\0" + generation])

The web side holds the master key (``CONSOLE_SIGNING_KEY``, else derived from ``SECRET_KEY``) and
so can sign for every host. An agent on another machine holds only its own host's key (handed out
at enrolment, ``CONSOLE_AGENT_KEY``): it verifies its own operations and cannot compute another
host's key (HMAC is a pseudo-random function: knowing HMAC(m, "...a") tells nothing of
HMAC(m, "...b")), so it cannot forge an operation another host's agent would run. What it can sign,
operations for its own host, gives it nothing: it is root on that host already. (The agent of the
embedded default shares the web side's settings and derives its key from the master key.) Every
enrolment moves the host to a new key generation and re-signs its pending operations, so the key
of a revoked host's earlier enrolment verifies nothing once the host is enrolled again.

The broker message (``console.run_operation``) carries the operation's id, host, kind and
signature; the agent runs an operation only if its row exists in the database for its own host,
is pending, and its stored signature verifies (the message's must equal it). Anything else runs
nothing and is recorded as a refused ``agent.message`` / ``agent.operation`` audit row.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.conf import settings

VERSION = "v1"


def master_key() -> bytes:
    configured = getattr(settings, "CONSOLE_SIGNING_KEY", "")
    if configured:
        return configured.encode()
    label = b"console operation signing master v1"
    return hmac.new(settings.SECRET_KEY.encode(), label, hashlib.sha256).digest()


def derive_host_key(slug: str, generation: int = 0) -> bytes:
    """The key of host ``slug``, from the master key (web side only). Each enrolment of the host
    moves it to the next ``generation``: a key handed out before (a revoked host's) no longer
    verifies anything."""
    label = b"console host key v1\0" + slug.encode() + (f"\0{generation}".encode() if generation else b"")
    return hmac.new(master_key(), label, hashlib.sha256).digest()


def host_key(host: Any) -> bytes:
    """The key this process verifies (and, on the web side, signs) ``host``'s operations with.

    An agent given its own key (``CONSOLE_AGENT_KEY``, hex) uses that one, for its own host only."""
    given = getattr(settings, "CONSOLE_AGENT_KEY", "")
    if given:
        own = _current_agent_host()
        if host.slug != own:
            raise KeyError(f"this agent holds the key of host '{own}' only, not of '{host.slug}'")
        return bytes.fromhex(given)
    return derive_host_key(host.slug, host.key_generation)


def _current_agent_host() -> str:
    from console.agent import current_host_slug

    return current_host_slug() or ""


def payload(*, pk: int, slug: str, kind: str, target: str, lock_key: str, params: Any) -> bytes:
    """What is signed: every field the agent acts on, one per line, parameters as canonical JSON."""
    body = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return "\n".join([VERSION, str(pk), slug, kind, target, lock_key, body]).encode()


def signature_of(op: Any, key: bytes | None = None) -> str:
    key = key if key is not None else host_key(op.host)
    data = payload(
        pk=op.pk, slug=op.host.slug, kind=op.kind, target=op.target, lock_key=op.lock_key, params=op.params
    )
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def sign(op: Any) -> str:
    """Sign ``op`` (saved, so it has its id) and store the signature on its row. Its parameters
    are signed as the database gives them back (what the agent will read)."""
    op.refresh_from_db(fields=["params"])
    op.signature = signature_of(op)
    type(op).objects.filter(pk=op.pk).update(signature=op.signature)
    return op.signature


def verifies(op: Any) -> bool:
    """Does ``op``'s stored signature match what it would run, under its host's key?"""
    if not op.signature:
        return False
    try:
        expected = signature_of(op)
    except KeyError:
        return False
    return hmac.compare_digest(expected, op.signature)
