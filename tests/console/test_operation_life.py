"""An Operation owns its life: claim, progress, result, finish (and the lock it holds)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.db import IntegrityError, transaction

from console.models import Operation
from tests.host.conftest import redis_server, redis_url  # noqa: F401  (a private Redis for the wake-up message)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def op(host):
    return Operation.objects.create(kind="test.life", host=host, target="t", lock_key="test:life")


def fresh(op: Operation) -> Operation:
    return Operation.objects.get(pk=op.pk)


def test_claim_runs_it_once(op):
    assert op.claim("agent-a") is True
    assert (op.status, op.worker) == ("running", "agent-a") and op.started_at is not None
    # A second delivery of the same task (acks_late) must not run it again.
    assert fresh(op).claim("agent-b") is False
    assert fresh(op).worker == "agent-a"


def test_progress_is_clamped_and_keeps_its_label_when_none_is_given(op):
    op.set_progress(150, "copying")
    op.set_progress(-3)
    row = fresh(op)
    assert (row.progress, row.progress_label) == (0, "copying")
    assert (op.progress, op.progress_label) == (0, "copying")


def test_a_partial_result_survives_a_failure(op):
    op.claim()
    op.set_result({"exit": 3})
    op.finish("failed", error="the command exited with status 3")
    row = fresh(op)
    assert row.result == {"exit": 3} and row.error.startswith("the command")
    assert row.finished_at is not None and row.progress == 0


def test_success_completes_progress_and_releases_the_lock(op, host):
    op.claim()
    with pytest.raises(IntegrityError), transaction.atomic():
        Operation.objects.create(kind="test.life", host=host, target="t", lock_key="test:life")
    op.finish("succeeded", result={"ok": True})
    row = fresh(op)
    assert (row.status, row.progress, row.progress_label, row.result) == (
        "succeeded",
        100,
        "done",
        {"ok": True},
    )
    assert Operation.objects.active("test:life") is None
    Operation.objects.create(kind="test.life", host=host, target="t", lock_key="test:life")


def test_orphans_are_that_hosts_operations_claimed_before_the_agent_started(op, host):
    from datetime import timedelta

    from django.utils import timezone

    other_host = type(host).objects.create(slug="other", name="other")
    running_elsewhere = Operation.objects.create(
        kind="test.life", host=other_host, target="t", lock_key="test:other", status="running"
    )
    pending = Operation.objects.create(kind="test.life", host=host, target="t", lock_key="test:pending")
    op.claim()
    life_started = timezone.now()
    mine_now = Operation.objects.create(kind="test.life", host=host, target="t", lock_key="test:now")
    mine_now.claim()  # claimed by the new life: not an orphan
    assert list(Operation.objects.orphaned(host, life_started)) == [op]
    assert list(Operation.objects.orphaned(host, life_started + timedelta(seconds=5))) == [op, mine_now]
    assert running_elsewhere not in Operation.objects.orphaned(host, life_started + timedelta(days=1))
    assert list(Operation.objects.claimable(host)) == [pending]


def test_claimable_is_oldest_first(host):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    newer = Operation.objects.create(kind="k", host=host, target="t", lock_key="a", created_at=now)
    older = Operation.objects.create(
        kind="k", host=host, target="t", lock_key="b", created_at=now - timedelta(seconds=9)
    )
    assert list(Operation.objects.claimable(host)) == [older, newer]


def test_cancel_frees_the_lock_and_a_late_claim_runs_nothing(op, host):
    assert op.cancel("cancelled by a1 before it ran") is True
    assert (op.status, op.error) == ("cancelled", "cancelled by a1 before it ran")
    assert op.finished_at is not None
    assert Operation.objects.active("test:life") is None
    Operation.objects.create(kind="test.life", host=host, target="t", lock_key="test:life")
    assert fresh(op).claim("late-message") is False and fresh(op).status == "cancelled"


def test_a_running_operation_is_not_cancelled(op):
    op.claim()
    assert op.cancel("x") is False and fresh(op).status == "running"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def test_the_request_side_and_the_agent_side_do_not_import_each_other():
    assert "console.tasks" not in _imports(ROOT / "console" / "operations.py")
    assert "console.operations" not in _imports(ROOT / "console" / "tasks.py")


def test_a_crash_shows_its_reason_and_keeps_the_traceback_in_the_agents_log(host, monkeypatch, caplog):
    """Issue 12.8: viewers of the host read an operation's error and log: no traceback there."""
    from console import tasks
    from containers.choices import ContainerOp

    def crash(op, runner):
        with open("/etc/hostname/impossible") as f:  # NotADirectoryError, as a bug would raise
            return {"read": f.read()}

    monkeypatch.setitem(tasks.HANDLERS, ContainerOp.START, crash)
    op = Operation.objects.create(kind=ContainerOp.START, host=host, target="t", lock_key="test:crash")
    with caplog.at_level("ERROR", logger="console.tasks"):
        done = tasks.execute(op)
    assert done.status == "failed"
    assert done.error == (
        "internal error: NotADirectoryError: [Errno 20] Not a directory: '/etc/hostname/impossible'"
    )
    for shown in (done.error, done.log):
        assert "Traceback" not in shown and 'File "' not in shown and "line " not in shown
    assert done.log.strip() == f"# failed: {done.error}"
    assert "Traceback" in caplog.text and "test_operation_life.py" in caplog.text


def test_a_long_multi_line_message_is_one_bounded_line():
    from console.tasks import internal_error

    reason = internal_error(ValueError('first line\n  File "x.py", line 3\n' + "y" * 1000))
    assert (
        "\n" not in reason
        and len(reason) <= 540
        and reason.startswith("internal error: ValueError: first line")
    )


def test_a_claim_is_one_write_and_keeps_the_row_it_read(op, host, django_assert_num_queries):
    op = Operation.objects.select_related("host").get(pk=op.pk)
    with django_assert_num_queries(1):  # the UPDATE: no read back, the host still loaded
        assert op.claim("agent-a") is True
        assert op.host.slug == host.slug
    assert (fresh(op).status, fresh(op).worker, fresh(op).started_at) == ("running", "agent-a", op.started_at)


@pytest.mark.django_db(transaction=True)
def test_the_wake_up_is_sent_with_the_id_written_with_the_row(redis_url, admin, host):  # noqa: F811
    import json

    import redis
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from console.operations import RequestContext, start_operation

    with CaptureQueriesContext(connection) as queries:
        op = start_operation(
            actor=admin,
            ctx=RequestContext(),
            host=host,
            kind="test.wake",
            target="t",
            lock_key="test:wake",
            params={},
        )
    # No write after the commit: the id was in the INSERT.
    assert not [
        q for q in queries.captured_queries if q["sql"].startswith("UPDATE") and "celery_id" in q["sql"]
    ]
    row = fresh(op)
    assert row.celery_id and row.celery_id == op.celery_id
    messages = [json.loads(m) for m in redis.Redis.from_url(redis_url).lrange(host.queue_name, 0, -1)]
    assert [m["headers"]["id"] for m in messages] == [row.celery_id]
    assert messages[0]["headers"]["task"] == "console.run_operation"
