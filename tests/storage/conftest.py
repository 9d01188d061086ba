"""Storage tests: the real Redis + agent fixtures of the host tests, fixtures files, a fast hasher."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.host.conftest import *  # noqa: F403

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_text(name: str) -> str:
    """A real command output, stored verbatim (seed chapter or captured on a host of this kind)."""
    return (FIXTURES / name).read_text()


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
