"""Template filters about operations: ``{% load operations %}``."""

from __future__ import annotations

from typing import Any

from django import template

from console.access import can
from console.choices import OperationStatus

register = template.Library()


@register.filter
def cancellable_by(op: Any, user: Any) -> bool:
    """Whether ``user`` may cancel ``op`` now: they are an operator of its host, and it is pending,
    or running on an online agent with no cancel asked yet."""
    if op.status == OperationStatus.RUNNING:
        if op.cancel_requested_by or not op.host.agent_online:
            return False
    elif op.status != OperationStatus.PENDING:
        return False
    return can(user, "operate", op.host)


@register.filter
def lock_event(lock_key: str) -> str:
    """The event-stream name of the operations on a lock key (console.stream)."""
    from console.stream import lock_event as name

    return name(lock_key)
