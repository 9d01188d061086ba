"""Cancelling an operation: pending ones never run; a running one has its command ended (real
processes here; the host tests cancel a real full copy and a long command in a container)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import models

from console.errors import Conflict, Forbidden
from console.models import AuditEvent, Operation
from console.operations import RequestContext
from console.recovery import group_members
from console.runner import CommandCancelled, Runner
from console.services import cancel_operation
from console.tasks import HANDLERS, execute, operation_handler


class _Kinds(models.TextChoices):
    LONG = "test.cancel.long", "two long commands"


@pytest.fixture
def long_kind():
    seen: dict[str, object] = {}

    @operation_handler(_Kinds.LONG)
    def handler(op, runner):
        try:
            runner.run(["sleep", "30"])
        except CommandCancelled:
            seen["cleanup"] = runner.run(["true"]).returncode  # the cleanup still runs
            raise
        runner.run(["sleep", "30"])  # never reached

    yield seen
    HANDLERS.pop(_Kinds.LONG, None)


def wait_process(op: Operation) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        process = Operation.objects.get(pk=op.pk).process
        if process:
            return process
        time.sleep(0.02)
    raise AssertionError("the command did not start")


@pytest.mark.django_db(transaction=True)
def test_a_running_command_is_ended_and_the_operation_cancelled(host, operator, long_kind):
    host.last_heartbeat = __import__("django.utils.timezone", fromlist=["now"]).now()
    host.save()
    op = Operation.objects.create(kind=_Kinds.LONG, host=host, target="t", lock_key="test:cancel")
    done: list[Operation] = []
    thread = threading.Thread(target=lambda: done.append(execute(op, worker="w")))
    thread.start()
    process = wait_process(op)
    asked = time.monotonic()
    cancel_operation(actor=operator, ctx=RequestContext(), op=Operation.objects.get(pk=op.pk))
    thread.join(10)
    assert time.monotonic() - asked < 2  # the runner looks every 0.5 s
    (row,) = done
    assert row.status == "cancelled"
    assert row.error == f"cancelled by {operator.username} while `sleep` ran: the command was ended"
    assert not group_members(process["pgid"])
    assert long_kind["cleanup"] == 0
    assert [c["argv"] for c in row.commands] == [["sleep", "30"], ["true"]]
    assert Operation.objects.active("test:cancel") is None
    audit = AuditEvent.objects.get(action="operation.cancel")
    assert audit.after == {"status": "running", "cancel_requested_by": operator.username}


def test_a_cancel_asked_between_commands_starts_no_more(host, admin):
    op = Operation.objects.create(kind="k", host=host, target="t", lock_key="test:between")
    op.claim("w")
    runner = Runner(op)
    runner.run(["true"])
    op.request_cancel(admin.username)
    with pytest.raises(CommandCancelled, match="before `sleep` ran"):
        runner.run(["sleep", "30"])
    assert runner.cancelled_by == admin.username
    assert runner.run(["true"]).returncode == 0  # cleanup after the cancel runs


def test_who_may_cancel_and_when(host, viewer, operator):
    op = Operation.objects.create(kind="k", host=host, target="t", lock_key="test:who")
    with pytest.raises(Forbidden):
        cancel_operation(actor=viewer, ctx=RequestContext(), op=op)
    op.claim("w")
    host.last_heartbeat = None
    host.save()
    op.refresh_from_db()
    with pytest.raises(Conflict, match="offline"):
        cancel_operation(actor=operator, ctx=RequestContext(), op=op)
    assert Operation.objects.get(pk=op.pk).cancel_requested_by == ""
    op.finish("succeeded")
    with pytest.raises(Conflict, match="ended already"):
        cancel_operation(actor=operator, ctx=RequestContext(), op=op)
    refused = AuditEvent.objects.filter(action="operation.cancel", result="refused").count()
    assert refused == 3
