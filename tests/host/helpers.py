from __future__ import annotations

from console.models import Operation
from tests.hosttools import wait_for


def wait_terminal(op_or_pk, timeout: float = 60) -> Operation:
    pk = getattr(op_or_pk, "pk", op_or_pk)

    def done():
        op = Operation.objects.get(pk=pk)
        return op if op.is_terminal else None

    return wait_for(done, timeout, interval=0.1, what=f"operation #{pk} to finish")
