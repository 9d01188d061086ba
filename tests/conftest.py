"""Shared fixtures: users with each role (through a team bound to all hosts), a host, its containers."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from console.models import Host, RoleBinding, Team
from containers.models import Container


@pytest.fixture(autouse=True)
def fast_password_hasher(request):
    """The fixture users' passwords hashed with a fast, test-only hasher, for every test in this
    process; not where a separate server process (uvicorn, an agent) checks a password: it reads
    the real settings and could not verify the hash."""
    if request.node.get_closest_marker("browser") or {"web", "serve"} & set(request.fixturenames):
        yield
        return
    settings = request.getfixturevalue("settings")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield


@pytest.fixture
def make_user(db):
    def make(
        username: str,
        *,
        role: str | None = "view",
        password: str = "a-long-test-password",
        hosts: list[Host] | None = None,
        superuser: bool = False,
    ):
        """A user whose team has ``role`` on all hosts (or on ``hosts``); role None: no team."""
        User = get_user_model()
        user = User.objects.create_user(username=username, password=password, is_superuser=superuser)
        if role is not None:
            team = Team.objects.create(name=f"team-{username}")
            team.members.add(user)
            binding = RoleBinding.objects.create(team=team, role=role, all_hosts=hosts is None)
            if hosts:
                binding.hosts.set(hosts)
        return user

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
def outsider(make_user):
    return make_user("otto-outsider", role=None)


@pytest.fixture
def superuser(make_user):
    return make_user("sue-superuser", role=None, superuser=True)


@pytest.fixture
def host(db):
    """A host as its agent registers it (no agent runs: nothing is enqueued in unit tests)."""
    return Host.objects.create(
        slug="testhost",
        name="test host",
        lxc_path="/var/lib/lxc",
        capabilities={"lxc": {"available": True, "version": "5.0.2", "templates": ["busybox", "debian"]}},
    )


@pytest.fixture
def make_container(host):
    """``make(name, state, **fields)``: a container row on ``host`` (its default LXC path)."""

    def make(name="web1", state="STOPPED", **kwargs):
        kwargs.setdefault("lxc_path", host.lxc_path)
        return Container.objects.create(host=host, name=name, state=state, **kwargs)

    return make
