"""Template filters about operations: ``{% load operations %}``."""

from __future__ import annotations

from typing import Any

from django import template

from console.access import can
from console.choices import OperationStatus

register = template.Library()


@register.filter
def cancellable_by(op: Any, user: Any) -> bool:
    """Whether ``user`` may cancel ``op`` now: it is pending and they are an admin of its host."""
    return op.status == OperationStatus.PENDING and can(user, "admin", op.host)
