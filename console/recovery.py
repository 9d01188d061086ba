"""What an agent that starts does with the operations an earlier life of it left running.

An operation whose agent died (SIGKILL, a crash, the host's power) stays ``running`` in the
database; the command it ran may still be running too, in its own process group (the runner
starts every command in its own session and records it on the operation). When the agent of
that host starts again it **adopts** each such operation, in its own thread:

1. the recorded process group, if still alive (same boot, same start time), is waited for, up
   to the command timeout counted from its start, and then ended: nothing is left running that
   nothing watches;
2. the command's exit status is read from the file its supervisor wrote (supervised kinds), or
   from the command list when the agent had already recorded it;
3. the kind's recovery (registered with :func:`operation_recovery`) decides the outcome from
   the host's real state: a finished copy is recorded as succeeded and linked to its origin, a
   half-made one removed, a start or stop reads the container's state. Kinds without one fail
   with what is known of the last command, and the inventory sync re-reads the target.

The operation keeps its target's lock until then, so nobody acts on a target whose outcome is
still being decided.

An operation whose host stayed offline past ``HOST_DEAD_AFTER_SECONDS`` was recorded as failed
meanwhile by the web side (``console.hostwatch``: "host vm1 offline since ...; outcome unknown")
and its lock released. The returning agent checks it the same way (steps 1-3) but does not
change its status: it logs what it found and keeps it as ``result["host_dead"]["checked"]``
(:meth:`Operation.record_late_outcome`). While it checks, the agent claims no pending operation
on the same target (:func:`checking`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, models
from django.utils import timezone

from console.choices import OperationStatus
from console.errors import ServiceError
from console.models import Host, Operation
from console.runner import CommandError, Runner, boot_id, proc_stat, read_exit_file, start_ticks

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LastCommand:
    """The last command an operation ran, as the restarted agent knows it."""

    argv: list[str]
    # Its exit status (minus the signal number when a signal ended it), None when unknown.
    exit: int | None
    # It was still running when the agent restarted (the agent waited for it or ended it).
    outlived_agent: bool = False
    # The restarted agent ended it (it ran past its timeout).
    ended_by_agent: bool = False

    @property
    def program(self) -> str:
        return os.path.basename(self.argv[0]) if self.argv else ""

    @property
    def succeeded(self) -> bool:
        return self.exit == 0

    def describe(self) -> str:
        command = shlex.join(self.argv)
        if self.ended_by_agent:
            return f"`{command}` ran past its timeout and was ended"
        if self.exit is None:
            return f"`{command}` ended with an unknown status (it was killed, or it was not supervised)"
        if self.exit < 0:
            return f"`{command}` was killed by signal {-self.exit}"
        return f"`{command}` exited with status {self.exit}"


Recovery = Callable[[Operation, Runner, "LastCommand | None"], "dict[str, Any] | None"]
RECOVERIES: dict[str, Recovery] = {}
# Kinds whose commands run under the supervisor (their exit status outlives the agent).
SUPERVISED: set[str] = set()


def operation_recovery(
    kind: models.TextChoices, *, supervised: bool = False
) -> Callable[[Recovery], Recovery]:
    """Register how a restarted agent decides the outcome of a ``kind`` operation it adopts.

    The function returns the operation's result (it succeeded) or raises :class:`ServiceError`
    (it failed, with that reason), after cleaning up what is half made. ``supervised`` kinds run
    their commands under ``console/supervise.py``, so the exit status of a command that outlived
    the agent is known (a copy, a create: a few milliseconds more per command)."""

    def register(func: Recovery) -> Recovery:
        RECOVERIES[kind] = func
        if supervised:
            SUPERVISED.add(kind)
        return func

    return register


def is_supervised(kind: str) -> bool:
    return kind in SUPERVISED


# --- process groups -------------------------------------------------------------------------------


def group_members(pgid: int) -> list[int]:
    """The pids of the processes in process group ``pgid`` (read from /proc)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = proc_stat(entry)
        # State, ppid, pgrp, ...: a zombie has ended already.
        if fields is not None and len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry))
    return members


def group_alive(process: dict) -> bool:
    """Whether the recorded command's process group still runs, in this boot.

    The group leader, while it lives, must have the recorded start time (a pid reused by a
    later process is not the command); once it is gone, members of its group are its children
    (a new process cannot join a group whose leader's pid it does not hold as a session)."""
    pgid = process.get("pgid")
    if not isinstance(pgid, int) or pgid <= 1 or process.get("boot_id") != boot_id():
        return False
    leader_start = start_ticks(pgid)
    if leader_start is not None and process.get("start_ticks") not in (None, leader_start):
        return False
    return bool(group_members(pgid))


def end_group(pgid: int, grace: float = 5.0) -> None:
    """SIGTERM the group, then SIGKILL what is left after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not group_members(pgid):
                return
            time.sleep(0.1)


# --- adoption -------------------------------------------------------------------------------------


def last_command(op: Operation, *, poll: float = 0.5) -> LastCommand | None:
    """Wait for the command the operation was running (if it still is) and say how it ended."""
    process = op.process
    if not process:
        if not op.commands:
            return None
        entry = op.commands[-1]
        return LastCommand(list(entry.get("argv", [])), entry.get("exit"))
    argv = list(process.get("argv") or [])
    ended_by_agent = False
    if group_alive(process):
        pgid = int(process["pgid"])
        op.append_log(f"# `{shlex.join(argv)}` (process group {pgid}) is still running: waiting for it\n")
        deadline = float(process.get("since") or time.time()) + settings.COMMAND_TIMEOUT_SECONDS
        while group_alive(process) and time.time() < deadline:
            time.sleep(poll)
        if group_alive(process):
            end_group(pgid)
            ended_by_agent = True
    exit_file = process.get("exit_file") or ""
    status = read_exit_file(exit_file) if exit_file else None
    if exit_file:
        with contextlib.suppress(OSError):
            os.unlink(exit_file)
    seconds = max(0.0, time.time() - float(process.get("since") or time.time()))
    op.record_command(argv, status if status is not None else -1, seconds)
    return LastCommand(argv, status, outlived_agent=True, ended_by_agent=ended_by_agent)


def default_recovery(op: Operation, runner: Runner, last: LastCommand | None) -> dict[str, Any]:
    what = last.describe() if last else "no command had run"
    raise ServiceError(f"{what}; it was not resumed, and the inventory sync re-reads the target's state")


def adopt(op: Operation) -> Operation:
    """Settle one operation an earlier life of the agent left running (see the module's text)."""
    op.append_log(
        f"# {timezone.localtime():%H:%M:%S} the agent restarted; this operation was running under its "
        "previous life: checking what happened\n"
    )
    runner = Runner(op)
    try:
        last = last_command(op)
        recovery = RECOVERIES.get(op.kind, default_recovery)
        result = recovery(op, runner, last) or {}
    except (ServiceError, CommandError) as exc:
        reason = f"the agent stopped while this operation was running: {exc.message}"
        runner.log(f"# failed: {reason}")
        op.finish(OperationStatus.FAILED, error=reason)
    except Exception as exc:
        logger.exception("recovering operation %s crashed", op.pk)
        reason = f"the agent restarted while this operation ran, and checking its outcome failed: {exc}"
        runner.log(f"# failed: {reason}")
        op.finish(OperationStatus.FAILED, error=reason)
    else:
        if op.finish(OperationStatus.SUCCEEDED, result={**result, "recovered_after_restart": True}):
            runner.log(
                "# recorded as succeeded: the outcome was checked on the host after the agent restarted"
            )
    finally:
        runner.sink.flush()
    op.refresh_from_db()
    return op


def check_host_dead(op: Operation) -> Operation:
    """Check on the host an operation recorded as failed while the host was known dead: what
    its last command and the kind's recovery say is logged and kept, the status stays."""
    op.append_log(
        f"# {timezone.localtime():%H:%M:%S} the agent of {op.host.slug} started again; this operation "
        "was recorded as failed while the host was offline: checking what happened\n"
    )
    runner = Runner(op)
    try:
        last = last_command(op)
        RECOVERIES.get(op.kind, default_recovery)(op, runner, last)
    except (ServiceError, CommandError) as exc:
        op.record_late_outcome(OperationStatus.FAILED, exc.message)
    except Exception as exc:
        logger.exception("checking operation %s crashed", op.pk)
        op.record_late_outcome(OperationStatus.FAILED, f"checking its outcome failed: {exc}")
    else:
        op.record_late_outcome(OperationStatus.SUCCEEDED, "")
    finally:
        runner.sink.flush()
    op.refresh_from_db()
    return op


# Lock keys of the operations recorded failed while their host was dead that this agent is
# checking now: their targets are free in the database, but the claim of pending operations waits.
_checking: set[str] = set()
_checking_lock = threading.Lock()


def checking() -> set[str]:
    with _checking_lock:
        return set(_checking)


def adopt_orphans(host: Host, life_started: Any) -> list[threading.Thread]:
    """Adopt, each in its own thread, the operations of ``host`` left running before
    ``life_started`` (this agent's start), and check those recorded failed while it was dead;
    returns the threads."""
    threads = []
    for op in Operation.objects.orphaned(host, life_started).select_related("host"):
        logger.warning("adopting operation %s (%s) left running by a previous agent", op.pk, op.kind)
        threads.append(_in_thread(adopt, op, f"adopt-{op.pk}"))
    for op in Operation.objects.host_dead_unchecked(host).select_related("host"):
        logger.warning("checking operation %s (%s), recorded failed while %s was dead", op.pk, op.kind, host)
        with _checking_lock:
            _checking.add(op.lock_key)
        threads.append(_in_thread(check_host_dead, op, f"check-{op.pk}", release=op.lock_key))
    return threads


def _in_thread(
    func: Callable[[Operation], Operation], op: Operation, name: str, release: str = ""
) -> threading.Thread:
    def run() -> None:
        try:
            func(op)
        except Exception:
            logger.exception("%s of operation %s failed", name, op.pk)
        finally:
            if release:
                with _checking_lock:
                    _checking.discard(release)
            connection.close()  # this thread's own connection ends with it

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
