"""The Runner executes real programs (argv lists, never a shell string) and records them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from console.models import Operation
from console.runner import CommandError, CommandResult, CommandTimeout, Runner


@pytest.fixture
def operation(host):
    return Operation.objects.create(kind="test.run", host=host, target="test", lock_key="test:runner")


def fresh(op: Operation) -> Operation:
    return Operation.objects.get(pk=op.pk)


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def wait_gone(pid: int, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_gone(pid):
            return True
        time.sleep(0.05)
    return process_gone(pid)


# --- Capturing output ---------------------------------------------------------------------------


def test_stdout_and_stderr_are_captured_separately_line_by_line():
    result = Runner(None).run(["sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2"])
    assert isinstance(result, CommandResult)
    assert result.returncode == 0 and result.ok
    assert result.stdout == "out1\nout2\n"
    assert result.stderr == "err1\nerr2\n"
    assert result.lines == ["out1", "out2"]
    assert result.argv == ["sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2"]
    assert result.seconds >= 0


def test_arguments_reach_the_program_verbatim_without_a_shell(tmp_path):
    # Shell syntax inside an argv item is data, not code: nothing is expanded or executed.
    marker = tmp_path / "pwned"
    evil = f"$(touch {marker}); `touch {marker}` | ; && *"
    result = Runner(None).run(["printf", "%s\\n", evil, "a b"])
    assert result.lines == [evil, "a b"]
    assert not marker.exists()


def test_output_without_trailing_newline_is_still_captured():
    seen = []
    result = Runner(None).run(["printf", "no newline"], on_line=lambda s, line: seen.append((s, line)))
    assert result.lines == ["no newline"]
    assert seen == [("out", "no newline")]


def test_crlf_line_endings_are_stripped():
    result = Runner(None).run(["printf", "a\\r\\nb\\r\\n"])
    assert result.lines == ["a", "b"]


def test_a_line_longer_than_one_read_is_kept_whole():
    result = Runner(None).run(["sh", "-c", "head -c 200000 /dev/zero | tr '\\0' a; echo; echo next"])
    assert result.lines == ["a" * 200000, "next"]


def test_invalid_utf8_is_replaced_not_fatal():
    result = Runner(None).run(["printf", "\\377ok\\n"])
    assert result.lines == ["\ufffdok"]


def test_on_line_receives_stream_name_and_line_without_newline():
    seen = []
    Runner(None).run(
        ["sh", "-c", "echo o1; echo e1 >&2; echo o2"],
        on_line=lambda stream, line: seen.append((stream, line)),
    )
    assert [line for s, line in seen if s == "out"] == ["o1", "o2"]
    assert [line for s, line in seen if s == "err"] == ["e1"]
    assert sorted(seen) == sorted([("out", "o1"), ("err", "e1"), ("out", "o2")])


def test_input_is_sent_to_stdin():
    result = Runner(None).run(["cat"], input="x\ny\n")
    assert result.lines == ["x", "y"]


def test_env_is_added_to_the_inherited_environment(monkeypatch):
    monkeypatch.setenv("RUNNER_TEST_INHERITED", "kept")
    result = Runner(None).run(
        ["sh", "-c", 'echo "$RUNNER_TEST_EXTRA $RUNNER_TEST_INHERITED"'], env={"RUNNER_TEST_EXTRA": "added"}
    )
    assert result.lines == ["added kept"]


def test_cwd_is_used(tmp_path):
    result = Runner(None).run(["pwd"], cwd=str(tmp_path))
    assert result.lines == [str(tmp_path)]


# --- The operation log and the commands list ---------------------------------------------------


def test_log_has_the_shlex_joined_transcript_line_then_the_output(operation):
    Runner(operation).run(["printf", "%s\\n", "a b", "c"])
    assert fresh(operation).log == "$ printf '%s\\n' 'a b' c\na b\nc\n"


def test_commands_records_argv_exit_and_seconds_in_order(operation):
    runner = Runner(operation)
    runner.run(["true"])
    runner.run(["sh", "-c", "sleep 0.2; exit 3"], check=False)
    commands = fresh(operation).commands
    assert [c["argv"] for c in commands] == [["true"], ["sh", "-c", "sleep 0.2; exit 3"]]
    assert [c["exit"] for c in commands] == [0, 3]
    assert all(isinstance(c["seconds"], float) for c in commands)
    assert 0.15 <= commands[1]["seconds"] < 5
    assert operation.commands == commands  # the in-memory object is kept in step
    assert fresh(operation).equivalent_commands == ["true", "sh -c 'sleep 0.2; exit 3'"]


def test_a_quick_command_costs_two_writes_of_its_operation(operation, django_assert_num_queries):
    """The transcript line goes with the process record, the output with the command list's
    entry: two UPDATEs and one read (the cancel check) per command; the command list is the one
    the operation holds, not read again. A read (record=False) costs no query."""
    runner = Runner(operation)
    with django_assert_num_queries(3) as queries:
        runner.run(["sh", "-c", "echo out; exit 4"], check=False)
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["SELECT", "UPDATE", "UPDATE"]
    with django_assert_num_queries(0):
        runner.run(["true"], record=False)
    with django_assert_num_queries(3):
        runner.run(["sh", "-c", "exit 0"])
    op = fresh(operation)
    assert op.log == "$ sh -c 'echo out; exit 4'\nout\n# exit status 4\n$ sh -c 'exit 0'\n"
    assert [(c["argv"], c["exit"]) for c in op.commands] == [
        (["sh", "-c", "echo out; exit 4"], 4),
        (["sh", "-c", "exit 0"], 0),
    ]
    assert op.process is None


def test_failed_command_writes_its_exit_status_into_the_log(operation):
    Runner(operation).run(["sh", "-c", "echo oops >&2; exit 3"], check=False)
    assert fresh(operation).log == "$ sh -c 'echo oops >&2; exit 3'\noops\n# exit status 3\n"


def test_log_is_streamed_while_the_command_runs(operation):
    # When the second line arrives the first one must already be in the database.
    log_when_second_line_arrived = []

    def on_line(stream, line):
        if line == "two":
            log_when_second_line_arrived.append(fresh(operation).log)

    Runner(operation).run(["sh", "-c", "echo one; sleep 0.6; echo two; sleep 0.3"], on_line=on_line)
    assert len(log_when_second_line_arrived) == 1
    assert "$ sh -c" in log_when_second_line_arrived[0]
    assert "one\n" in log_when_second_line_arrived[0]
    assert fresh(operation).log.endswith("one\ntwo\n")


def test_log_appends_to_what_is_already_there(operation):
    Operation.objects.filter(pk=operation.pk).update(log="earlier\n")
    runner = Runner(operation)
    runner.log("# a note")
    runner.run(["echo", "hi"])
    assert fresh(operation).log == "earlier\n# a note\n$ echo hi\nhi\n"


def test_record_false_writes_nothing_to_the_log_or_commands(operation):
    runner = Runner(operation)
    runner.run(["echo", "secret"], record=False)
    with pytest.raises(CommandError):
        runner.run(["sh", "-c", "echo bad >&2; exit 1"], record=False)
    op = fresh(operation)
    assert op.log == ""
    assert op.commands == []


# --- Failures -----------------------------------------------------------------------------------


def test_non_zero_exit_raises_command_error_with_details():
    argv = ["sh", "-c", "echo partial; echo first problem >&2; echo the real cause >&2; exit 3"]
    with pytest.raises(CommandError) as info:
        Runner(None).run(argv)
    exc = info.value
    assert type(exc) is CommandError
    assert exc.argv == argv
    assert exc.returncode == 3
    assert exc.stderr == "first problem\nthe real cause\n"
    assert exc.stdout == "partial\n"
    assert exc.message == "sh failed: the real cause"
    assert str(exc) == exc.message
    assert exc.command == "sh -c 'echo partial; echo first problem >&2; echo the real cause >&2; exit 3'"


def test_non_zero_exit_without_stderr_names_the_exit_status():
    with pytest.raises(CommandError) as info:
        Runner(None).run(["false"])
    assert info.value.returncode == 1
    assert info.value.message == "false failed: exit status 1"


def test_error_message_overrides_the_default_message():
    with pytest.raises(CommandError) as info:
        Runner(None).run(["false"], error_message="could not do the thing")
    assert info.value.message == "could not do the thing"
    assert info.value.returncode == 1


def test_check_false_returns_the_failed_result():
    result = Runner(None).run(["sh", "-c", "echo why >&2; exit 7"], check=False)
    assert result.returncode == 7
    assert not result.ok
    assert result.stderr == "why\n"


def test_missing_program_raises_command_error_saying_it_is_not_installed(operation):
    with pytest.raises(CommandError) as info:
        Runner(operation).run(["no-such-program-for-runner-tests", "--help"])
    exc = info.value
    assert exc.message == "no-such-program-for-runner-tests is not installed on this host"
    assert exc.returncode is None
    assert exc.argv == ["no-such-program-for-runner-tests", "--help"]
    assert fresh(operation).log.startswith("$ no-such-program-for-runner-tests --help\n")


def test_missing_cwd_is_not_reported_as_a_missing_program(tmp_path):
    with pytest.raises(CommandError) as info:
        Runner(None).run(["true"], cwd=str(tmp_path / "gone"))
    assert "not installed" not in info.value.message


# --- Timeouts -----------------------------------------------------------------------------------


def test_timeout_kills_the_whole_process_group_quickly(tmp_path, operation):
    pidfile = tmp_path / "child.pid"
    script = 'echo started; sleep 30 & echo $! > "$1"; sleep 30'
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as info:
        Runner(operation).run(["sh", "-c", script, "sh", str(pidfile)], timeout=0.5)
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 5
    exc = info.value
    assert isinstance(exc, CommandError)
    assert exc.returncode == -9
    assert exc.stdout == "started\n"
    assert exc.message == "sh did not finish within 0.5 seconds"
    child = int(pidfile.read_text())
    assert wait_gone(child), f"background child {child} survived the timeout"
    op = fresh(operation)
    assert op.log.endswith("started\n# exit status -9 (timed out)\n")
    assert op.commands[-1]["exit"] == -9


def test_timeout_is_raised_even_with_check_false():
    with pytest.raises(CommandTimeout):
        Runner(None).run(["sleep", "10"], timeout=0.3, check=False)


def test_default_timeout_comes_from_the_runner():
    started = time.monotonic()
    with pytest.raises(CommandTimeout):
        Runner(None, default_timeout=0.3).run(["sleep", "10"])
    assert time.monotonic() - started < 5


def test_default_timeout_falls_back_to_the_setting(settings):
    settings.COMMAND_TIMEOUT_SECONDS = 123
    assert Runner(None).default_timeout == 123


def test_timeout_holds_while_input_is_being_written():
    started = time.monotonic()
    with pytest.raises(CommandTimeout):
        Runner(None).run(["sleep", "3"], input="x" * 1_000_000, timeout=0.5)
    assert time.monotonic() - started < 2


# --- Refused argv -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    ["echo hi", b"echo hi", [], (), ["echo", 1], ["echo", None], [b"echo"]],
    ids=["str", "bytes", "empty-list", "empty-tuple", "int-item", "none-item", "bytes-item"],
)
def test_argv_that_is_not_a_list_of_str_raises_type_error(argv, operation):
    with pytest.raises(TypeError):
        Runner(operation).run(argv)
    op = fresh(operation)
    assert op.log == "" and op.commands == []


def test_shell_string_is_never_run(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(TypeError):
        Runner(None).run(f"touch {marker}")
    assert not marker.exists()


@pytest.mark.parametrize("argv", [["echo", "a\x00b"], ["ec\x00ho"], ["echo", "ok", "\x00"]])
def test_argv_item_with_nul_raises_value_error(argv, operation):
    with pytest.raises(ValueError, match="NUL"):
        Runner(operation).run(argv)
    assert fresh(operation).log == ""


def test_runner_without_operation_writes_nothing_anywhere(host):
    # A probe runner (no operation) must not touch any Operation row.
    op = Operation.objects.create(kind="other", host=host, target="t", lock_key="other")
    Runner(None).run(["echo", "probe"])
    assert fresh(op).log == "" and fresh(op).commands == []


def test_pid_of_the_command_is_not_left_running(tmp_path):
    pidfile = tmp_path / "pid"
    Runner(None).run(["sh", "-c", 'echo $$ > "$1"', "sh", str(pidfile)])
    assert wait_gone(int(pidfile.read_text()))
    assert os.getpid() != int(pidfile.read_text())
