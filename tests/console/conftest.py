"""Console tests: a pending operation on the shared test host (tests/conftest.py has the users)."""

from __future__ import annotations

import pytest

from console.models import Operation


@pytest.fixture
def op(host, admin):
    return Operation.objects.create(
        kind="container.start", actor=admin, host=host, target="container testhost/web1", lock_key="k:web1"
    )
