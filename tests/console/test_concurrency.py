"""One active operation per target, under real concurrency: two clients race on one container.

Each client is a thread with its own Django test client and so its own database connection
(Django's connections are per thread), committing for real (``transactional_db``). `make test`
runs this on SQLite and on PostgreSQL; on PostgreSQL the two transactions truly overlap, and
only the partial unique index ``one_active_operation_per_target`` decides which one wins.
Accepted operations are enqueued to the session's private Redis (no agent consumes them).
"""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from console import operations
from console.models import AuditEvent, Operation
from containers.models import Container
from tests.host.conftest import redis_server, redis_url  # noqa: F401  (a private Redis for the accepted operations)

pytestmark = pytest.mark.django_db(transaction=True)


def race(clients: list[Client], url: str, data: dict | None = None) -> list:
    """POST ``url`` from every client at the same moment, each in its own thread; the responses."""
    start = threading.Barrier(len(clients))
    responses: list = [None] * len(clients)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait(timeout=30)
            responses[i] = clients[i].post(url, data or {}, HTTP_HX_REQUEST="true")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()  # this thread's connection; the test database is dropped later

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert all(not t.is_alive() for t in threads)
    return responses


@pytest.fixture
def racers(redis_url, make_user, host):  # noqa: F811
    container = Container.objects.create(host=host, name="web1", lxc_path="/var/lib/lxc", state="STOPPED")
    clients = []
    for name in ("ann-operator", "bob-operator"):
        client = Client()
        client.force_login(make_user(name, role="operate"))
        clients.append(client)
    return container, clients


def outcome(responses: list) -> tuple[list, list]:
    accepted = [r for r in responses if r.status_code == 202]
    busy = [r for r in responses if r.status_code == 409]
    return accepted, busy


def test_two_clients_start_one_container_at_once_one_runs_the_other_is_told_busy(racers):
    container, clients = racers
    url = reverse("containers:action", args=[container.pk, "start"])
    for round_ in range(5):
        accepted, busy = outcome(race(clients, url))
        assert (len(accepted), len(busy)) == (1, 1), f"round {round_}"
        assert "busy: operation #" in busy[0].content.decode()
        assert Operation.objects.filter(lock_key=container.lock_key, status="pending").count() == 1
        # The operation ends (as its agent would make it); the next round races again.
        Operation.objects.filter(lock_key=container.lock_key).update(status="succeeded")
    assert Operation.objects.count() == 5
    assert AuditEvent.objects.filter(action="container.start", result="accepted").count() == 5
    assert AuditEvent.objects.filter(action="container.start", result="refused").count() == 5


def test_when_both_pass_the_check_the_database_index_decides(racers, monkeypatch):
    """Both requests find no active operation, then both insert: the database must refuse one.

    The service looks for an active operation first (for a friendly message); holding both threads
    after that look makes the inserts overlap every time, so the unique index is what is tested.
    """
    container, clients = racers
    looked = threading.Barrier(2)
    first_look = threading.local()
    real = operations.active_operation

    def active_operation_then_wait(lock_key: str):
        found = real(lock_key)
        if not getattr(first_look, "done", False):  # only the pre-check, not the lookup after losing
            first_look.done = True
            assert found is None
            looked.wait(timeout=30)
        return found

    monkeypatch.setattr(operations, "active_operation", active_operation_then_wait)
    url = reverse("containers:action", args=[container.pk, "start"])
    accepted, busy = outcome(race(clients, url))
    assert (len(accepted), len(busy)) == (1, 1)
    winner = Operation.objects.get(lock_key=container.lock_key)
    assert f"busy: operation #{winner.pk} is running on {container.target}" in busy[0].content.decode()
    assert AuditEvent.objects.filter(action="container.start", result="refused").count() == 1


def test_a_create_and_a_create_of_the_same_new_name_race(redis_url, make_user, host):  # noqa: F811
    """No container row exists yet: the lock is the name on the host's LXC path."""
    clients = []
    for name in ("ann-admin", "bob-admin"):
        client = Client()
        client.force_login(make_user(name, role="admin"))
        clients.append(client)
    data = {"host": host.slug, "name": "new1", "template": "busybox"}
    responses = race(clients, reverse("containers:create"), data)
    assert sorted(r.status_code for r in responses) == [302, 409]
    assert Operation.objects.filter(kind="container.create", target__endswith="/new1").count() == 1
