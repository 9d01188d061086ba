"""Shared fixtures: users with each role and a registered host."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from console.models import Host


@pytest.fixture
def make_user(db):
    def make(username: str, *, role: str = "view", password: str = "a-long-test-password"):
        User = get_user_model()  # noqa: N806
        return User.objects.create_user(
            username=username,
            password=password,
            is_staff=role in ("operate", "admin"),
            is_superuser=role == "admin",
        )

    return make


@pytest.fixture
def admin(make_user):
    return make_user("alice-admin", role="admin")


@pytest.fixture
def operator(make_user):
    return make_user("oscar-operator", role="operate")


@pytest.fixture
def viewer(make_user):
    return make_user("vera-viewer", role="view")


@pytest.fixture
def host(db):
    """A host as its agent registers it (no agent runs: nothing is enqueued in unit tests)."""
    return Host.objects.create(
        slug="testhost",
        name="test host",
        lxc_path="/var/lib/lxc",
        capabilities={"lxc": {"available": True, "version": "5.0.2", "templates": ["busybox", "debian"]}},
    )
