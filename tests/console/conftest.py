"""Console tests: a pending operation on the shared test host (tests/conftest.py has the users), and
many operations with their audit rows for the query-count tests."""

from __future__ import annotations

import pytest

from console.models import Operation
from console.operations import RequestContext, audit


@pytest.fixture
def op(host, admin):
    return Operation.objects.create(
        kind="container.start", actor=admin, host=host, target="container testhost/web1", lock_key="k:web1"
    )


def make_rows(host, admin, first, last):
    """Operations c<first>..c<last-1>, each with the audit event that accepted it."""
    ctx = RequestContext(ip="192.0.2.1", request_id="r" * 12)
    for i in range(first, last):
        op = Operation.objects.create(
            kind="container.start",
            actor=admin,
            host=host,
            target=f"container testhost/c{i}",
            lock_key=f"k{i}",
            status="succeeded" if i % 2 else "failed",
        )
        audit(
            actor=admin,
            ctx=ctx,
            action="container.start",
            result="accepted",
            host=host,
            target=op.target,
            params={"name": f"c{i}"},
            before={"state": "STOPPED"},
            operation=op,
        )
