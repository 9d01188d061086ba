"""Run host commands as argv lists (never a shell) and record them in an Operation.

Each command is written to the operation log as a transcript line (``$ lxc-start -n web``)
followed by its output, streamed line by line while it runs, so the page can show a
live tail. Drivers receive a :class:`Runner`; only drivers build argv.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, overload

from django.conf import settings

if TYPE_CHECKING:
    from console.models import Operation

LineCallback = Callable[[str, str], None]  # (stream name "out"/"err", line without newline)

# Output kept in memory per command; the log in the database keeps everything streamed.
_MAX_CAPTURE = 4 * 1024 * 1024
# How often a running command looks for a cancel request (one indexed read of its operation).
_CANCEL_CHECK_SECONDS = 0.5
# Runs a command and writes its exit status to a file, even if the agent dies (supervised runs).
SUPERVISE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "supervise.py")


class CommandError(Exception):
    """A host command failed: carries the command, exit status, stderr and a human message."""

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str] = (),
        returncode: int | None = None,
        stderr: str = "",
        stdout: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    def __str__(self) -> str:
        return self.message


class CommandTimeout(CommandError):
    pass


class CommandCancelled(CommandError):
    """A person cancelled the operation: its running command was ended (or the next not started).

    Drivers clean up after it as after any failed command; the operation ends "cancelled"."""


@dataclass
class CommandResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


def check_argv(argv: Sequence[str]) -> list[str]:
    """argv as a list of str without NUL (public: every runner, the test VM's too, checks the same)."""
    if isinstance(argv, (str, bytes)) or not argv:
        raise TypeError("argv must be a non-empty list of strings, never a shell string")
    out = []
    for arg in argv:
        if not isinstance(arg, str):
            raise TypeError(f"argv items must be str, got {type(arg).__name__}")
        if "\x00" in arg:
            raise ValueError("argv items must not contain NUL")
        out.append(arg)
    return out


@dataclass
class LogSink:
    """Buffers log text and flushes it to the Operation at most every ``interval`` seconds."""

    operation: Operation | None
    interval: float = 0.25
    _buf: list[str] = field(default_factory=list)
    _last: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, text: str) -> None:
        if self.operation is None:
            return
        with self._lock:
            self._buf.append(text)
            now = time.monotonic()
            if now - self._last >= self.interval:
                self._flush_locked(now)

    def flush(self) -> None:
        with self._lock:
            self._flush_locked(time.monotonic())

    def hold(self, text: str) -> None:
        """Buffer ``text`` without flushing: the caller's next write of the operation takes it
        (:meth:`take`), one UPDATE instead of two."""
        if self.operation is None:
            return
        with self._lock:
            self._buf.append(text)

    def take(self) -> str:
        """The buffered text, which the caller writes with its own write (it counts as a flush)."""
        with self._lock:
            text = "".join(self._buf)
            self._buf.clear()
            self._last = time.monotonic()
            return text

    def _flush_locked(self, now: float) -> None:
        if self._buf and self.operation is not None:
            self.operation.append_log("".join(self._buf))
            self._buf.clear()
        self._last = now


class Runner:
    """Executes argv lists on this host for one operation (or none, for read-only probes).

    Each command runs in its own session (so its process group is its pid), recorded on the
    operation while it runs: an agent that restarts finds it (``console.recovery``). A
    ``supervised`` runner also starts each command under ``supervise.py``, which writes the exit
    status to a file that outlives the agent."""

    def __init__(
        self,
        operation: Operation | None = None,
        *,
        default_timeout: float | None = None,
        supervised: bool = False,
    ):
        self.operation = operation
        self.default_timeout = default_timeout or settings.COMMAND_TIMEOUT_SECONDS
        self.sink = LogSink(operation)
        self.supervised = supervised and operation is not None
        self._count = 0
        # Who cancelled the operation, once a cancel has ended a command: the commands that
        # follow (the cleanup of a half-made result) run normally.
        self.cancelled_by = ""

    @contextlib.contextmanager
    def quiet(self) -> Iterator[Runner]:
        """A runner on the same host that logs into no operation (inventory reads after a change)."""
        yield Runner(None, default_timeout=self.default_timeout)

    def log(self, text: str) -> None:
        """Write a note into the operation log (not a command)."""
        self.sink.write(text if text.endswith("\n") else text + "\n")
        self.sink.flush()

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = True,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        on_line: LineCallback | None = None,
        error_message: str | None = None,
        record: bool = True,
        cwd: str | None = None,
    ) -> CommandResult:
        """Run ``argv`` and return its result; raise :class:`CommandError` when it fails and ``check``."""
        args = check_argv(argv)
        timeout = self.default_timeout if timeout is None else timeout
        # A cancel is acted on before the next command that changes something; a read
        # (record=False) changes nothing and is not held up by a query.
        who = self._cancel_request() if record else ""
        if who:
            self.cancelled_by = who
            self.sink.write(f"# cancelled by {who}: `{shlex.join(args)}` is not run\n")
            self.sink.flush()
            raise CommandCancelled(f"cancelled by {who} before `{args[0]}` ran", argv=args)
        if record:
            self.sink.hold(f"$ {shlex.join(args)}\n")  # written with the process record below
        started = time.monotonic()
        full_env = None
        if env is not None:
            full_env = {**os.environ, **env}
        exit_file = ""
        popen_args = args
        # A read (record=False: lxc-info, lxc-wait, lvs, ...) changes nothing on the host: it runs
        # without the supervisor (a second interpreter per command) and is not recorded as the
        # operation's process, so a restarted agent judges the operation by the last command that
        # did change something.
        operation = self.operation if record else None
        if self.supervised and operation is not None:
            if shutil.which(args[0], path=(full_env or os.environ).get("PATH")) is None:
                self.sink.flush()
                raise CommandError(f"{args[0]} is not installed on this host", argv=args)
            self._count += 1
            exit_file = exit_file_path(operation.pk, self._count)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(exit_file)
            popen_args = [sys.executable, "-I", "-S", SUPERVISE, exit_file, *args]
        try:
            proc = subprocess.Popen(  # argv list, no shell
                popen_args,
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=full_env,
                cwd=cwd,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            self.sink.flush()
            if cwd is not None and not os.path.isdir(cwd):
                raise CommandError(f"the working directory {cwd} does not exist", argv=args) from exc
            raise CommandError(
                f"{args[0]} is not installed on this host", argv=args, returncode=None, stderr=str(exc)
            ) from exc
        except PermissionError as exc:
            self.sink.flush()
            raise CommandError(f"{args[0]} cannot be executed: {exc}", argv=args) from exc

        if operation is not None:
            operation.set_process(process_record(proc.pid, args, exit_file), log=self.sink.take())
        out_parts: list[str] = []
        err_parts: list[str] = []
        sizes = {"out": 0, "err": 0}
        if input is not None and proc.stdin is not None:
            # Written from a thread: a program that does not read its input must not
            # block the output loop or escape the timeout.
            threading.Thread(target=_feed, args=(proc.stdin, input.encode()), daemon=True).start()

        sel = selectors.DefaultSelector()
        assert proc.stdout is not None and proc.stderr is not None
        sel.register(proc.stdout, selectors.EVENT_READ, "out")
        sel.register(proc.stderr, selectors.EVENT_READ, "err")
        pending = {"out": b"", "err": b""}
        deadline = started + timeout
        timed_out = False
        cancelled_by = ""
        next_cancel_check = started + _CANCEL_CHECK_SECONDS

        def emit(stream: str, raw: bytes) -> None:
            line = raw.decode(errors="replace")
            target = out_parts if stream == "out" else err_parts
            if sizes[stream] < _MAX_CAPTURE:
                target.append(line + "\n")
                sizes[stream] += len(line) + 1
            if record:
                self.sink.write(line + "\n")
            if on_line is not None:
                on_line(stream, line)

        while sel.get_map():
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                timed_out = True
                break
            if now >= next_cancel_check:
                next_cancel_check = now + _CANCEL_CHECK_SECONDS
                cancelled_by = self._cancel_request()
                if cancelled_by:
                    break
            for key, _ in sel.select(timeout=min(remaining, 0.5)):
                stream = key.data
                chunk = os.read(key.fileobj.fileno(), 65536)  # type: ignore[union-attr]
                if not chunk:
                    sel.unregister(key.fileobj)
                    if pending[stream]:
                        emit(stream, pending[stream])
                        pending[stream] = b""
                    continue
                data = pending[stream] + chunk
                *complete, pending[stream] = data.split(b"\n")
                for raw in complete:
                    emit(stream, raw.rstrip(b"\r"))
        sel.close()

        if timed_out or cancelled_by:
            self._kill(proc)
        try:
            returncode = proc.wait(timeout=max(0.1, deadline - time.monotonic()) if not timed_out else 5)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            returncode = proc.wait()
            timed_out = True
        for pipe in (proc.stdout, proc.stderr):
            pipe.close()
        if exit_file:
            # The command's own status (the supervisor exits 128+N for a signal N).
            returncode = read_exit_file(exit_file, default=returncode)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(exit_file)
        seconds = time.monotonic() - started
        result = CommandResult(args, returncode, "".join(out_parts), "".join(err_parts), seconds)
        if record:
            if cancelled_by:
                self.sink.hold(
                    f"# cancelled by {cancelled_by}: the command was ended (process group {proc.pid})\n"
                )
            elif returncode != 0 or timed_out:
                self.sink.hold(f"# exit status {returncode}{' (timed out)' if timed_out else ''}\n")
            # The rest of its output goes with the command list's entry: one write.
            self._record_command(args, returncode, seconds, log=self.sink.take())
        if cancelled_by:
            self.cancelled_by = cancelled_by
            raise CommandCancelled(
                f"cancelled by {cancelled_by} while `{args[0]}` ran: the command was ended",
                argv=args,
                returncode=returncode,
                stderr=result.stderr,
                stdout=result.stdout,
            )
        if timed_out:
            raise CommandTimeout(
                f"{args[0]} did not finish within {timeout:g} seconds",
                argv=args,
                returncode=returncode,
                stderr=result.stderr,
                stdout=result.stdout,
            )
        if check and returncode != 0:
            raise CommandError(
                error_message or _default_message(args, returncode, result.stderr),
                argv=args,
                returncode=returncode,
                stderr=result.stderr,
                stdout=result.stdout,
            )
        return result

    def _cancel_request(self) -> str:
        """Who asked to cancel this runner's operation ("" if nobody, or once a cancel was acted on)."""
        if self.operation is None or self.cancelled_by:
            return ""
        model = type(self.operation)
        who = model.objects.filter(pk=self.operation.pk).values_list("cancel_requested_by", flat=True).first()
        return who or ""

    def _record_command(self, argv: list[str], returncode: int, seconds: float, *, log: str = "") -> None:
        if self.operation is None:
            return
        self.operation.record_command(argv, returncode, seconds, log=log)  # also forgets the process

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        # The command runs in its own session: end it and whatever it started.
        try:
            os.killpg(proc.pid, 9)
        except (ProcessLookupError, PermissionError):
            proc.kill()


def die_with_agent() -> None:
    """``preexec_fn`` of the agent's own helpers (``lxc-monitor``): the kernel sends them SIGTERM
    when the agent dies, however it dies (PR_SET_PDEATHSIG). Never used for an operation's
    commands: those must outlive a crashed agent, which adopts them when it returns."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, 15, 0, 0, 0)  # PR_SET_PDEATHSIG = 1, SIGTERM = 15


def exit_file_path(operation_id: int, n: int) -> str:
    """Where the supervisor of the ``n``-th command of an operation writes its exit status."""
    directory = settings.AGENT_STATE_DIR
    os.makedirs(directory, mode=0o700, exist_ok=True)
    return os.path.join(directory, f"op{int(operation_id)}-{int(n)}.exit")


@overload
def read_exit_file(path: str, default: int) -> int: ...
@overload
def read_exit_file(path: str, default: None = None) -> int | None: ...
def read_exit_file(path: str, default: int | None = None) -> int | None:
    """The exit status a supervisor wrote, or ``default`` if it wrote none (it was killed)."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return default
    if not text.lstrip("-").isascii() or not text.lstrip("-").isdigit():
        return default
    return int(text)


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def proc_stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...), or None if
    the process is gone. The name (field 2) may hold spaces and parentheses: split after its last ")"."""
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().rpartition(")")[2].split()
    except OSError:
        return None


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (field 22 of /proc/PID/stat):
    with the boot id it tells a process from a later one that reuses its pid."""
    fields = proc_stat(pid)
    return int(fields[19]) if fields is not None and len(fields) > 19 else None


def process_record(pid: int, argv: list[str], exit_file: str) -> dict:
    """What an operation keeps of its running command (the command is its own group leader)."""
    return {
        "pgid": pid,
        "start_ticks": start_ticks(pid),
        "boot_id": boot_id(),
        "argv": argv,
        "exit_file": exit_file,
        "since": time.time(),
    }


def _feed(pipe, data: bytes) -> None:
    try:
        pipe.write(data)
        pipe.close()
    except (BrokenPipeError, ValueError, OSError):
        pass


def _default_message(argv: list[str], returncode: int, stderr: str) -> str:
    last = [line.strip() for line in stderr.splitlines() if line.strip()]
    detail = last[-1] if last else f"exit status {returncode}"
    return f"{argv[0]} failed: {detail}"
