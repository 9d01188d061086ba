"""A host known dead (no heartbeat for longer than HOST_DEAD_AFTER_SECONDS): the web side's host
watch records its running operations as failed, and an agent that comes back checks them on the
host without changing their status. Real processes for the commands an agent leaves behind."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.db import models
from django.urls import reverse
from django.utils import timezone

from console import hostwatch, recovery
from console.agent import Claimer
from console.models import Host, Operation
from console.runner import SUPERVISE, exit_file_path, process_record
from tests.hosttools import wait_for


class _Kinds(models.TextChoices):
    CHECKED = "test.hostdead.checked", "checked"


@pytest.fixture(autouse=True)
def thresholds(settings, tmp_path):
    settings.AGENT_OFFLINE_AFTER_SECONDS = 20
    settings.HOST_DEAD_AFTER_SECONDS = 180
    settings.AGENT_STATE_DIR = str(tmp_path / "state")


@pytest.fixture
def recover_ok():
    """A recovery for the test kind that finds the operation done."""
    seen = []

    @recovery.operation_recovery(_Kinds.CHECKED, supervised=True)
    def check(op, runner, last):
        seen.append(last)
        return {"found": True}

    yield seen
    recovery.RECOVERIES.pop(_Kinds.CHECKED, None)
    recovery.SUPERVISED.discard(_Kinds.CHECKED)


def beat(host: Host, seconds_ago: float) -> Host:
    Host.objects.filter(pk=host.pk).update(last_heartbeat=timezone.now() - timedelta(seconds=seconds_ago))
    host.refresh_from_db()
    return host


def running(host: Host, key: str, kind: str = "test.hostdead.other") -> Operation:
    op = Operation.objects.create(kind=kind, host=host, target=key, lock_key=f"test:{key}")
    assert op.claim("agent-old")
    return op


def test_the_running_operations_of_a_dead_host_fail_with_the_reason(host, make_user):
    other = Host.objects.create(slug="other", name="other")
    dead = beat(host, 600)
    merely_offline = beat(other, 60)  # offline (over 20 s) but not dead yet (under 180 s)
    op = running(dead, "a")
    waiting = Operation.objects.create(kind="test.x", host=dead, target="b", lock_key="test:b")
    kept = running(merely_offline, "c")

    failed = hostwatch.fail_operations_of_dead_hosts()
    assert [o.pk for o in failed] == [op.pk]
    op.refresh_from_db()
    since = timezone.localtime(dead.last_heartbeat).strftime("%H:%M:%S")
    assert op.status == "failed" and op.error == f"host testhost offline since {since}; outcome unknown"
    assert op.finished_at is not None and op.result["host_dead"]["since"] == dead.last_heartbeat.isoformat()
    assert "HOST_DEAD_AFTER_SECONDS" in op.log and "stays failed" in op.log
    assert Operation.objects.active("test:a") is None  # its target is free
    assert Operation.objects.get(pk=waiting.pk).status == "pending"  # waits for the agent
    assert Operation.objects.get(pk=kept.pk).status == "running"
    # Once only: a second look (another web process) changes nothing.
    assert hostwatch.fail_operations_of_dead_hosts() == []
    assert Operation.objects.get(pk=op.pk).log.count("failed: host testhost") == 1

    # The operation's page says it, and how it ended.
    client_user = make_user("vic", role="view")
    from django.test import Client

    client = Client()
    client.force_login(client_user)
    page = client.get(reverse("operation-detail", args=[op.pk])).content.decode()
    assert f"host testhost offline since {since}; outcome unknown" in page


def test_an_agent_back_before_the_update_keeps_its_operation(host):
    """The heartbeat that arrives between the watch's read and its write wins."""
    op = running(beat(host, 600), "a")
    stale = Host.objects.get(pk=host.pk)
    beat(host, 0)
    assert not op.fail_host_dead(stale)
    assert Operation.objects.get(pk=op.pk).status == "running"


@pytest.mark.django_db(transaction=True)
def test_the_watch_thread_does_it(host, settings):
    op = running(beat(host, 600), "a")
    stop = threading.Event()
    thread = threading.Thread(target=hostwatch.watch, args=(stop, 0.05), daemon=True)
    thread.start()
    try:
        wait_for(lambda: Operation.objects.get(pk=op.pk).status == "failed", 10, what="the watch")
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_an_agent_that_finishes_late_does_not_flip_the_failure(host):
    """Its agent lived on (a network cut): its end is logged and kept, the status stays failed."""
    op = running(beat(host, 600), "a")
    assert op.fail_host_dead(host)
    assert not op.finish("succeeded", result={"container_id": 3})
    op.refresh_from_db()
    assert op.status == "failed" and "outcome unknown" in op.error
    assert op.result["host_dead"]["checked"]["outcome"] == "succeeded"
    assert "it had in fact succeeded" in op.log and "It stays failed" in op.log


def test_the_returning_agent_checks_it_on_the_host_and_keeps_it_failed(host, recover_ok, client, admin):
    op = running(beat(host, 600), "a", kind=_Kinds.CHECKED)
    # The command it ran ended while nobody watched (exit 0, written by its supervisor).
    argv = ["sh", "-c", "exit 0"]
    exit_file = exit_file_path(op.pk, 1)
    proc = subprocess.Popen([sys.executable, "-I", "-S", SUPERVISE, exit_file, *argv], start_new_session=True)
    op.set_process(process_record(proc.pid, argv, exit_file))
    proc.wait(timeout=10)
    assert op.fail_host_dead(host)
    pending = Operation.objects.create(kind="test.x", host=host, target="a", lock_key="test:a")
    assert list(Operation.objects.host_dead_unchecked(host)) == [op]

    # The agent starts again: the claim waits for the target while the check runs.
    host = beat(host, 0)
    recovery._checking.add(op.lock_key)
    try:
        assert Claimer(host).claim_pending() == 0
    finally:
        recovery._checking.discard(op.lock_key)
    done = recovery.check_host_dead(Operation.objects.select_related("host").get(pk=op.pk))
    (last,) = recover_ok
    assert last.exit == 0 and last.argv == argv
    assert done.status == "failed" and "outcome unknown" in done.error
    assert done.result["host_dead"]["checked"]["outcome"] == "succeeded"
    assert "was recorded as failed while the host was offline: checking" in done.log
    assert "it had in fact succeeded" in done.log
    assert list(Operation.objects.host_dead_unchecked(host)) == []  # checked once
    assert Operation.objects.get(pk=pending.pk).status == "pending"
    client.force_login(admin)
    page = client.get(reverse("operation-detail", args=[op.pk])).content.decode()
    assert 'data-host-dead-checked="succeeded"' in page and "It stays failed" in page


@pytest.mark.django_db(transaction=True)
def test_a_check_that_finds_a_failure_says_so(host):
    """The agent's start checks it in a thread of its own (as it adopts orphans)."""
    op = running(beat(host, 600), "b")
    op.record_command(["sh", "-c", "exit 3"], 3, 0.1)
    assert op.fail_host_dead(host)
    threads = recovery.adopt_orphans(beat(host, 0), timezone.now())
    for t in threads:
        t.join(10)
    done = Operation.objects.get(pk=op.pk)
    assert done.status == "failed" and done.result["host_dead"]["checked"]["outcome"] == "failed"
    assert "exited with status 3" in done.result["host_dead"]["checked"]["detail"]
    assert recovery.checking() == set()
