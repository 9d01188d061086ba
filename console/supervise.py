"""Run one host command and write its exit status to a file, even if the agent dies meanwhile.

Started by the runner (never imported by the console) as
``python -I -S supervise.py EXIT_FILE ARGV...`` in the command's own session, for operations
whose outcome an agent that restarts must be able to decide (a copy, a create: see
``console.recovery``). Only the standard library is used, so it starts in a few milliseconds.

The command's output goes through this process: while the agent reads it, it is passed on
unchanged; once the agent is gone (its end of the pipe is closed), it is still read and thrown
away, so the command is never killed by SIGPIPE or blocked on a full pipe. When the command ends,
its status (the exit code, or minus the signal number, as :mod:`subprocess` reports it) is
written to EXIT_FILE atomically and this process exits with the same status.
"""

import os
import select
import sys


def _relay(fds: dict[int, int]) -> None:
    """Copy each readable fd to its output fd until every one is at end of file."""
    broken: set[int] = set()
    while fds:
        readable, _, _ = select.select(list(fds), [], [])
        for fd in readable:
            chunk = os.read(fd, 65536)
            if not chunk:
                os.close(fd)
                del fds[fd]
                continue
            out = fds[fd]
            if out in broken:
                continue
            try:
                while chunk:
                    chunk = chunk[os.write(out, chunk) :]
            except OSError:  # the agent is gone: keep draining, stop writing
                broken.add(out)


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        sys.stderr.write("usage: supervise.py EXIT_FILE ARGV...\n")
        return 2
    exit_file, command = argv[1], argv[2:]
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the command: same session and process group as this process
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for fd in (out_r, out_w, err_r, err_w):
            os.close(fd)
        try:
            os.execvp(command[0], command)
        except OSError as exc:
            os.write(2, f"{command[0]}: {exc.strerror}\n".encode())
            os._exit(127)
    os.close(out_w)
    os.close(err_w)
    _relay({out_r: 1, err_r: 2})
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    tmp = f"{exit_file}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{code}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, exit_file)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
