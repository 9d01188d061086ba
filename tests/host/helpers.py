from __future__ import annotations

from console.models import Operation
from tests.hosttools import wait_for


def wait_terminal(op_or_pk, timeout: float = 60) -> Operation:
    pk = getattr(op_or_pk, "pk", op_or_pk)

    def done():
        op = Operation.objects.get(pk=pk)
        return op if op.is_terminal else None

    return wait_for(done, timeout, interval=0.1, what=f"operation #{pk} to finish")


def succeeded(op_or_pk, timeout: float = 60) -> Operation:
    """Wait for the operation to end and assert it succeeded (its kind, error and log if not)."""
    op = wait_terminal(op_or_pk, timeout)
    assert op.status == "succeeded", (op.kind, op.error, op.log[-3000:])
    return op


def failed(op_or_pk, timeout: float = 60) -> Operation:
    """Wait for the operation to end and assert it failed (its kind and log if not)."""
    op = wait_terminal(op_or_pk, timeout)
    assert op.status == "failed", (op.kind, op.log[-3000:])
    return op


def browser_session(user) -> tuple[str, dict[str, str]]:
    """A real logged-in session of ``user``, as a browser holds it: the session key, and the
    headers (its session cookie) a websocket from that browser sends."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    key = client.session.session_key
    assert key is not None
    return key, {"Cookie": f"{settings.SESSION_COOKIE_NAME}={key}"}
