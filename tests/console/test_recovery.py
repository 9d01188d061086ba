"""Supervised commands and the adoption of orphaned operations, with real processes.

An agent that dies leaves its operation ``running`` and its command running in its own process
group; these tests make that situation for real (the supervisor started in its own session, not
waited for, as a killed agent leaves it) and check what the next agent records.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from django.db import models

from console import recovery
from console.models import Operation
from console.recovery import LastCommand, adopt, group_alive, group_members, operation_recovery
from console.runner import SUPERVISE, Runner, exit_file_path, process_record


class _Kinds(models.TextChoices):
    WAITED = "test.recovery.waited", "waited"


@pytest.fixture
def state_dir(settings, tmp_path):
    settings.AGENT_STATE_DIR = str(tmp_path / "state")
    return tmp_path / "state"


@pytest.fixture
def op(host):
    op = Operation.objects.create(kind="test.recovery.other", host=host, target="t", lock_key="test:rec")
    op.claim("agent-old")
    return op


@pytest.fixture
def recorded():
    """A recovery registered for the test kind; what it was given is kept."""
    seen: list[LastCommand | None] = []

    @operation_recovery(_Kinds.WAITED, supervised=True)
    def recover(op, runner, last):
        seen.append(last)
        return {"checked": True}

    yield seen
    recovery.RECOVERIES.pop(_Kinds.WAITED, None)
    recovery.SUPERVISED.discard(_Kinds.WAITED)


def orphan(op: Operation, argv: list[str]) -> subprocess.Popen:
    """Start ``argv`` as the runner of a supervised operation does, and record it, but never wait
    for it: what an agent killed at that moment leaves behind."""
    exit_file = exit_file_path(op.pk, 1)
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", SUPERVISE, exit_file, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    op.set_process(process_record(proc.pid, argv, exit_file))
    return proc


@pytest.mark.parametrize("supervised", [False, True])
def test_a_supervised_command_reports_what_an_unsupervised_one_does(op, state_dir, supervised):
    runner = Runner(op, supervised=supervised)
    ok = runner.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
    assert (ok.returncode, ok.stdout, ok.stderr) == (3, "out\n", "err\n")
    killed = runner.run(["sh", "-c", "kill -TERM $$"], check=False)
    assert killed.returncode == -15
    row = Operation.objects.get(pk=op.pk)
    assert [c["exit"] for c in row.commands] == [3, -15] and row.process is None
    assert not list(state_dir.glob("*.exit")) if supervised else True
    with pytest.raises(Exception, match="is not installed"):
        runner.run(["no-such-tool-here"])


def test_the_running_command_is_recorded_while_it_runs(op, state_dir):
    seen = []
    runner = Runner(op, supervised=True)
    runner.run(
        ["sh", "-c", "echo started; sleep 0.3"],
        on_line=lambda stream, line: seen.append(Operation.objects.get(pk=op.pk).process),
    )
    process = seen[0]
    assert process["argv"] == ["sh", "-c", "echo started; sleep 0.3"]
    assert process["exit_file"].startswith(str(state_dir)) and process["boot_id"]
    assert isinstance(process["pgid"], int) and isinstance(process["start_ticks"], int)
    assert Operation.objects.get(pk=op.pk).process is None


def test_a_read_runs_without_the_supervisor_and_leaves_the_last_change_as_the_process(op, state_dir):
    """A read (record=False: lxc-info after the action) is not the operation's process: no second
    interpreter for it, no write of it, and a restarted agent still sees the last change."""
    runner = Runner(op, supervised=True)
    runner.run(["true"])
    seen = []
    runner.run(
        ["sh", "-c", "echo $PPID; sleep 0.2"],
        record=False,
        on_line=lambda stream, line: seen.append((line, Operation.objects.get(pk=op.pk).process)),
    )
    ((parent, process),) = seen
    assert process is None  # not recorded as the running command
    assert int(parent) == os.getpid()  # started by the agent itself, not by a supervisor
    row = Operation.objects.get(pk=op.pk)
    assert [c["argv"] for c in row.commands] == [["true"]] and row.process is None
    assert recovery.last_command(row).argv == ["true"]


def test_an_orphaned_command_that_finishes_is_waited_for_and_its_status_read(op, state_dir, recorded):
    Operation.objects.filter(pk=op.pk).update(kind=_Kinds.WAITED)
    op.refresh_from_db()
    proc = orphan(op, ["sh", "-c", "sleep 1.5; exit 0"])
    assert group_alive(op.process)
    started = time.monotonic()
    done = adopt(op)
    assert time.monotonic() - started >= 1.0  # it waited for the command
    assert done.status == "succeeded", done.error
    assert done.result == {"checked": True, "recovered_after_restart": True}
    (last,) = recorded
    assert (last.argv, last.exit, last.outlived_agent, last.ended_by_agent) == (
        ["sh", "-c", "sleep 1.5; exit 0"],
        0,
        True,
        False,
    )
    assert done.commands[-1]["exit"] == 0 and done.process is None
    assert "still running: waiting for it" in done.log and "agent restarted" in done.log
    proc.wait(timeout=5)


def test_an_orphaned_command_past_its_timeout_is_ended(op, state_dir, recorded, settings):
    settings.COMMAND_TIMEOUT_SECONDS = 1
    Operation.objects.filter(pk=op.pk).update(kind=_Kinds.WAITED)
    op.refresh_from_db()
    proc = orphan(op, ["sleep", "60"])
    pgid = op.process["pgid"]
    adopt(op)
    proc.wait(timeout=5)
    (last,) = recorded
    assert last.ended_by_agent and last.exit is None
    assert not group_members(pgid)


def test_a_kind_without_recovery_fails_with_what_its_command_did(op, state_dir):
    proc = orphan(op, ["sh", "-c", "exit 4"])
    proc.wait(timeout=5)
    done = adopt(op)
    assert done.status == "failed"
    assert done.error.startswith("the agent stopped while this operation was running: `sh -c 'exit 4'`")
    assert "exited with status 4" in done.error and done.finished_at is not None
    assert Operation.objects.active("test:rec") is None


def test_a_recorded_process_of_another_boot_or_a_reused_pid_is_not_alive(op, state_dir):
    proc = orphan(op, ["sleep", "30"])
    try:
        assert group_alive(op.process)
        assert not group_alive({**op.process, "boot_id": "another-boot"})
        assert not group_alive({**op.process, "start_ticks": op.process["start_ticks"] + 1})
        assert not group_alive({**op.process, "pgid": 1})
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def test_the_supervisor_keeps_the_command_alive_when_the_agent_is_gone(tmp_path):
    """The agent's end of the pipe closes (it died): the command still runs to its end, and its
    status is written, although it goes on printing."""
    exit_file = tmp_path / "x.exit"
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", SUPERVISE, str(exit_file), "sh", "-c", "sleep 0.5; seq 100000; exit 7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    proc.stdout.close()
    proc.stderr.close()
    assert proc.wait(timeout=10) == 7
    assert exit_file.read_text() == "7\n"


def test_a_message_for_an_operation_that_is_not_pending_changes_nothing(op, monkeypatch):
    """A late (or replayed) message of a running operation leaves it alone; the agent records it."""
    from console import signing
    from console.models import AuditEvent
    from console.tasks import run_operation

    monkeypatch.setenv("CONSOLE_AGENT_HOST", op.host.slug)
    signing.sign(op)
    before = Operation.objects.get(pk=op.pk)
    assert run_operation(op.pk, host=op.host.slug, kind=op.kind, signature=op.signature) == "running"
    after = Operation.objects.get(pk=op.pk)
    assert (after.status, after.worker, after.started_at) == ("running", before.worker, before.started_at)
    assert AuditEvent.objects.get(action="agent.message.refused").message == (
        "the operation is running: a replayed or late message; nothing was run"
    )
