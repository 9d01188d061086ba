"""A :class:`~console.runner.Runner` whose commands run inside a QEMU VM, over its serial console.

This host kernel has no device-mapper and no ZFS module, but Debian's kernel booted under
software emulation (``qemu-system-x86_64 -accel tcg``, see HOST-NOTES.md) has device-mapper
(and ZFS, once ``zfs-dkms`` has built ``zfs.ko`` for it). The VM
runner lets the console's own drivers run there unchanged: the driver builds the argv and parses
the output, exactly as with the local runner; the VM only executes.

How a command travels: ``shlex.join(argv)`` (never a hand-written shell string) is sent as one
line on the serial console, framed by markers that carry a per-command token::

    printf '%s-%s\\n' VMSTART <tok>; (<argv>) </dev/null 2>/tmp/.vm-err;
    printf '\\n%s-%s %s\\n' VMRC <tok> "$?"; cat /tmp/.vm-err; printf '\\n%s-%s\\n' VMEND <tok>

The console echoes the line back, but the echo never contains a marker (``VMRC <tok>`` with a
blank, the output ``VMRC-<tok>`` with a dash), so output and echo cannot be confused. stdout and
stderr are separated (stderr goes to a file in the VM and is printed after the exit status), CRs
added by the serial line are stripped, and stdin is ``/dev/null`` as with the local runner: an
``lvremove``/``vgremove`` that would ask a question gets "no", it never eats the next command.

A line may hold no control character (Ctrl-A is QEMU's escape, tab and Ctrl-C/U/D are the
shell's line editing) and at most 1000 bytes (busybox ash edits 1024 a line; a longer one hangs):
both are refused with ValueError before anything is sent.

The VM can run this host's own system: :class:`VmShare` exports ``/`` read-only over virtio-9p
(the 9p and overlay modules travel in a small archive put in front of Debian's initrd, see
:func:`initrd_with_files`), the VM lays a tmpfs overlay on it and :meth:`VmRunner.enter_root`
makes a chroot there the shell every later command runs in. A writable share mounted at its own
path gives both sides one directory (an LXC path the console's driver and LXC in the VM share).

Every wait is bounded. A command that does not finish in time leaves the shell busy, so the runner
is then marked broken and refuses further commands; :meth:`close` kills QEMU by its own handle.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import secrets
import selectors
import shlex
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from console.runner import (
    CommandError,
    CommandResult,
    CommandTimeout,
    LineCallback,
    LogSink,
    Runner,
    check_argv,
)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ERR_FILE = "/tmp/.vm-err"  # inside the VM, not on this host
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The VM's shell (busybox ash) edits at most 1024 characters a line; stay below.
_MAX_LINE = 1000
# Output kept in memory before it is discarded as already consumed.
_MAX_BUFFER = 8 * 1024 * 1024


class VmError(CommandError):
    """The VM itself failed: it did not boot, it exited, or its console stopped answering."""


def debian_kernel() -> tuple[str, str] | None:
    """The newest ``/boot/vmlinuz-*`` that has a matching ``/boot/initrd.img-*``, or None."""

    def version(path: str) -> list:
        return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", path)]

    for kernel in sorted(glob.glob("/boot/vmlinuz-*"), key=version, reverse=True):
        initrd = kernel.replace("/vmlinuz-", "/initrd.img-")
        if os.path.exists(initrd):
            return kernel, initrd
    return None


_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,30}")


@dataclass(frozen=True)
class VmShare:
    """A directory of this host exported to the VM over virtio-9p (QEMU's ``-virtfs``).

    Read-only shares use ``security_model=none``; a writable one uses ``passthrough``, so files the
    VM's root creates belong to root on this host too. In the VM::

        mount -t 9p -o trans=virtio,version=9p2000.L <tag> <where>
    """

    path: str
    tag: str
    readonly: bool = True

    def argv(self) -> list[str]:
        if not os.path.isabs(self.path) or "," in self.path or _CONTROL.search(self.path):
            # QEMU splits its option list on commas: a path with one would change the options.
            raise ValueError(f"a VM share must be an absolute path without commas: {self.path!r}")
        if not _TAG.fullmatch(self.tag):
            raise ValueError(f"invalid 9p mount tag {self.tag!r}")
        options = [
            "local",
            f"path={self.path}",
            f"mount_tag={self.tag}",
            "security_model=" + ("none" if self.readonly else "passthrough"),
            "multidevs=remap",
        ]
        if self.readonly:
            options.append("readonly=on")
        return ["-virtfs", ",".join(options)]


def module_load_order(kernel_version: str, names: Sequence[str], *, root: str = "/") -> list[str]:
    """The ``.ko`` files (relative to ``/lib/modules/<version>``) for ``names`` and everything they
    depend on, dependencies first, read from that kernel's ``modules.dep``. Built-in modules are
    not in it and need nothing."""
    dep_file = Path(root, "lib/modules", kernel_version, "modules.dep")
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in dep_file.read_text().splitlines():
        path, sep, rest = line.partition(":")
        if not sep:
            continue
        deps[path] = rest.split()
        base = os.path.basename(path).split(".ko")[0]
        by_name[base.replace("-", "_")] = path
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in deps.get(path, []):
            visit(dep)
        order.append(path)

    for name in names:
        found = by_name.get(name.replace("-", "_"))
        if found is None:
            raise ValueError(f"module {name!r} is not in {dep_file} (built in, or missing)")
        visit(found)
    return order


def _newc(entries: Sequence[tuple[str, int, bytes]]) -> bytes:
    """A ``newc`` cpio archive of ``(name, mode, data)`` entries, as the kernel unpacks an initramfs."""
    out = bytearray()

    def pad() -> None:
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        encoded = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields))
        out.extend(encoded)
        pad()
        out.extend(data)
        pad()
    return bytes(out)


def initrd_with_files(base: str, files: Mapping[str, str], out: str | Path) -> Path:
    """``base`` (Debian's initrd) with extra files in front of it: ``{path in the VM: file here}``.

    The extra archive goes first and uncompressed: the kernel unpacks concatenated archives, but
    not reliably anything appended after a compressed one."""
    entries: list[tuple[str, int, bytes]] = []
    dirs: set[str] = set()
    for target in sorted(files):
        parts = target.strip("/").split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.add(d)
                entries.append((d, 0o040755, b""))
        entries.append(("/".join(parts), 0o100644, Path(files[target]).read_bytes()))
    out = Path(out)
    with open(out, "wb") as fh:
        fh.write(_newc(entries))
        with open(base, "rb") as src:
            while chunk := src.read(1 << 20):
                fh.write(chunk)
    return out


class VmRunner(Runner):
    """Runs argv lists in a VM's shell (``rdinit=/bin/sh``) through its serial console.

    A drop-in for :class:`~console.runner.Runner` in the drivers: same ``run`` signature and
    :class:`~console.runner.CommandResult`, same :class:`~console.runner.CommandError` on a
    non-zero exit, same operation log when given an operation.
    """

    def __init__(
        self,
        *,
        kernel: str,
        initrd: str,
        disk: str,
        memory_mb: int = 1024,
        qemu: str = "qemu-system-x86_64",
        append: str = "console=ttyS0 panic=-1 rdinit=/bin/sh",
        operation=None,
        default_timeout: float = 180,
        transcript: str | None = None,
        shares: Sequence[VmShare] = (),
        extra_disks: Sequence[str] = (),
        network: bool = False,
    ) -> None:
        super().__init__(operation, default_timeout=default_timeout)
        self.argv = [
            qemu,
            "-accel",
            "tcg",
            "-m",
            str(memory_mb),
            "-nographic",
            "-kernel",
            kernel,
            "-initrd",
            initrd,
            "-append",
            append,
            "-drive",
            f"file={disk},if=virtio,format=raw",
            "-no-reboot",
        ]
        for extra in extra_disks:  # /dev/vdb, /dev/vdc... in this order
            if "," in extra or not os.path.isabs(extra):
                raise ValueError(f"a VM disk must be an absolute path without commas: {extra!r}")
            self.argv += ["-drive", f"file={extra},if=virtio,format=raw"]
        for share in shares:
            self.argv += share.argv()
        if network:
            # QEMU's user networking: the guest's 10.0.2.2 is this machine's loopback (a test's
            # PostgreSQL and Redis). The guest is given no route beyond 10.0.2.0/24 (see
            # tests/vm_host/conftest.py), so nothing leaves the machine.
            self.argv += ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"]
        else:
            self.argv += ["-nic", "none"]
        self.proc: subprocess.Popen | None = None
        self.broken: str | None = None
        self._buf = b""
        self._session = secrets.token_hex(4)
        self._counter = 0
        self._sel: selectors.BaseSelector | None = None
        self._transcript = open(transcript, "ab") if transcript else None  # closed in close()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, *, boot_timeout: float = 600, probe_every: float = 10) -> float:
        """Start QEMU and wait until its shell answers; return the seconds it took."""
        if self.proc is not None:
            raise VmError("the VM is already started")
        started = time.monotonic()
        self.proc = subprocess.Popen(  # argv list, no shell
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not self._sync(boot_timeout, probe_every):
            self._fail_boot(boot_timeout)
        # The framing needs /tmp (stderr file) and /dev/null (stdin), which a bare initramfs
        # may lack before /dev is mounted.
        sync = self._token()
        self._send(
            f"mkdir -p /tmp /dev; [ -c /dev/null ] || mknod -m 666 /dev/null c 1 3; echo VMSYNC\\-{sync}"
        )
        if self._wait_for(re.compile(rb"VMSYNC-" + sync.encode() + rb"\n"), 60) is None:
            self._fail_boot(boot_timeout)
        return time.monotonic() - started

    def _sync(self, timeout: float, probe_every: float) -> bool:
        """Probe the shell until it answers: False if it does not within ``timeout``."""
        deadline = time.monotonic() + timeout
        # The serial console can lose characters typed while the kernel is still booting or the
        # shell is not reading yet: probe until one probe is answered. The pattern matches any
        # probe's answer, and consuming it consumes the answers of earlier, queued probes.
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            tok = self._token()
            # No quotes in a probe: a line garbled during boot must not leave a quote open.
            self._send(f"echo VMREADY\\-{tok}")
            if self._wait_for(re.compile(rb"VMREADY-[0-9a-f]+-\d+\n"), min(probe_every, remaining)):
                return True

    def enter_root(self, root: str, *, shell: str = "/bin/sh", timeout: float = 60) -> None:
        """Replace the VM's shell by ``shell`` chrooted into ``root`` (a tree set up by :meth:`shell`
        lines: a system with LXC, for instance). Every later command runs there."""
        if not os.path.isabs(root) or not os.path.isabs(shell):
            raise ValueError("enter_root needs absolute paths")
        self.sink.write(f"$ {shlex.join(['exec', 'chroot', root, shell])}\n")
        # Not through _execute: the new shell must take over the console, not run in a subshell.
        self._send(shlex.join(["exec", "chroot", root, shell]))
        if not self._sync(timeout, 5):
            self.broken = f"no shell answered in {root}"
            raise VmError(f"the shell {shell} in {root} did not answer within {timeout:g} s", argv=self.argv)
        sync = self._token()
        self._send(f"echo VMSYNC\\-{sync}")
        if self._wait_for(re.compile(rb"VMSYNC-" + sync.encode() + rb"\n"), timeout) is None:
            self.broken = f"no shell answered in {root}"
            raise VmError(f"the shell {shell} in {root} did not answer", argv=self.argv)

    @contextlib.contextmanager
    def bound(self, operation) -> Iterator[VmRunner]:
        """Log this VM's commands into ``operation`` (its transcript and command list) for a while:
        what :func:`console.tasks.execute` does with a fresh local runner."""
        saved = self.operation, self.sink
        self.operation, self.sink = operation, LogSink(operation)
        try:
            yield self
        finally:
            self.sink.flush()
            self.operation, self.sink = saved

    @contextlib.contextmanager
    def quiet(self) -> Iterator[VmRunner]:
        """This VM, logging into no operation for a while."""
        with self.bound(None):
            yield self

    def _fail_boot(self, boot_timeout: float) -> None:
        tail = self._buf[-2000:].decode(errors="replace")
        self.broken = "the VM did not boot to a shell"
        self.close()
        raise VmError(
            f"the VM shell did not answer within {boot_timeout:g} s (qemu: {shlex.join(self.argv)}); "
            f"last console output:\n{tail}",
            argv=self.argv,
        )

    def close(self, timeout: float = 10) -> None:
        """Power the VM off: kill QEMU by its own handle (the VM's disk is throw-away)."""
        proc, self.proc = self.proc, None
        if self._sel is not None:
            self._sel.close()
            self._sel = None
        if proc is not None:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, 9)
                except (ProcessLookupError, PermissionError):
                    proc.kill()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not wait
                proc.kill()
                proc.wait(timeout=timeout)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
        if self._transcript is not None:
            self._transcript.close()
            self._transcript = None
        self.broken = self.broken or "the VM is closed"

    def __enter__(self) -> VmRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands ----------------------------------------------------------------------------

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
        """Run ``argv`` in the VM; raise :class:`CommandError` when it fails and ``check``."""
        args = check_argv(argv)
        command = shlex.join(args)
        if env:
            bad = [k for k in env if not _ENV_NAME.fullmatch(k)]
            if bad:
                raise ValueError(f"not an environment variable name: {bad[0]!r}")
            command = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + command
        if cwd is not None:
            command = f"cd {shlex.quote(cwd)} && {command}"
        stdin = "</dev/null"
        if input is not None:
            command = f"printf %s {shlex.quote(input)} | {{ {command}; }}"
            stdin = ""
        return self._execute(
            args,
            f"( {command} ) {stdin}".rstrip(),
            timeout=timeout,
            check=check,
            on_line=on_line,
            error_message=error_message,
            record=record,
        )

    def shell(self, line: str, *, timeout: float | None = None, check: bool = True) -> CommandResult:
        """Run one plain shell line: for setting up the VM itself (mounts, modules, config).

        Not for the drivers: their commands go through :meth:`run` as argv lists.
        """
        return self._execute(
            ["sh", "-c", line], f"( {line} ) </dev/null", timeout=timeout, check=check, record=True
        )

    def _execute(
        self,
        args: list[str],
        command: str,
        *,
        timeout: float | None,
        check: bool,
        on_line: LineCallback | None = None,
        error_message: str | None = None,
        record: bool = True,
    ) -> CommandResult:
        if self.broken or self.proc is None:
            raise VmError(f"the VM cannot run commands: {self.broken or 'it is not started'}", argv=args)
        if _CONTROL.search(command):
            # Ctrl-A is QEMU's escape (Ctrl-A x quits), Ctrl-C/U/D and tab are the shell's line
            # editing: none may reach the console. A newline would split the command.
            raise ValueError("a command sent to the VM console must be one line without control characters")
        timeout = self.default_timeout if timeout is None else timeout
        if record:
            self.sink.write(f"$ {shlex.join(args)}\n")
        tok = self._token()
        line = (
            f"printf '%s-%s\\n' VMSTART {tok}; {command} 2>{_ERR_FILE}; "
            f"printf '\\n%s-%s %s\\n' VMRC {tok} \"$?\"; cat {_ERR_FILE}; "
            f"printf '\\n%s-%s\\n' VMEND {tok}"
        )
        if len(line.encode()) > _MAX_LINE:
            raise ValueError(f"the command is too long for the VM console ({len(line)} > {_MAX_LINE} bytes)")
        started = time.monotonic()
        self._send(line)
        t = re.escape(tok.encode())
        framed = re.compile(
            rb"VMSTART-" + t + rb"\n(.*?)\nVMRC-" + t + rb" (\d+)\n(.*?)\nVMEND-" + t + rb"\n", re.DOTALL
        )
        match = self._wait_for(framed, timeout)
        seconds = time.monotonic() - started
        if match is None:
            self.broken = f"{shlex.join(args)} did not finish within {timeout:g} s"
            if record:
                self.sink.write("# timed out in the VM\n")
                self.sink.flush()
                self._record_command(args, -1, seconds)
            raise CommandTimeout(
                f"{args[0]} did not finish within {timeout:g} seconds in the VM",
                argv=args,
                returncode=None,
                stdout=self._buf[-2000:].decode(errors="replace"),
            )
        stdout = match.group(1).decode(errors="replace")
        returncode = int(match.group(2))
        stderr = match.group(3).decode(errors="replace")
        for stream, text in (("out", stdout), ("err", stderr)):
            for one in text.splitlines():
                if record:
                    self.sink.write(one + "\n")
                if on_line is not None:
                    on_line(stream, one)
        result = CommandResult(args, returncode, stdout, stderr, seconds)
        if record:
            if returncode != 0:
                self.sink.write(f"# exit status {returncode}\n")
            self.sink.flush()
            self._record_command(args, returncode, seconds)
        if check and returncode != 0:
            last = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
            detail = last[-1] if last else f"exit status {returncode}"
            raise CommandError(
                error_message or f"{args[0]} failed: {detail}",
                argv=args,
                returncode=returncode,
                stderr=stderr,
                stdout=stdout,
            )
        return result

    # -- the serial line ---------------------------------------------------------------------

    def _token(self) -> str:
        self._counter += 1
        return f"{self._session}-{self._counter}"

    def _send(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            self.broken = "the VM exited"
            raise VmError(f"the VM exited (qemu status {self.proc.poll()})", argv=self.argv) from exc

    def _wait_for(self, pattern: re.Pattern[bytes], timeout: float) -> re.Match[bytes] | None:
        """Read the console until ``pattern`` matches; consume up to the match; None on timeout."""
        assert self.proc is not None and self._sel is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            match = pattern.search(self._buf)
            if match is not None:
                self._buf = self._buf[match.end() :]
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            for _ in self._sel.select(timeout=min(remaining, 0.5)):
                try:
                    chunk = os.read(self.proc.stdout.fileno(), 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    self.broken = "the VM exited"
                    tail = self._buf[-2000:].decode(errors="replace")
                    raise VmError(
                        f"the VM exited (qemu status {self.proc.poll()}); last console output:\n{tail}",
                        argv=self.argv,
                    )
                if self._transcript is not None:
                    self._transcript.write(chunk)
                    self._transcript.flush()
                self._buf = (self._buf + chunk.replace(b"\r", b""))[-_MAX_BUFFER:]


def make_disk(path: str | Path, size_bytes: int) -> Path:
    """A sparse raw disk image for the VM (``truncate -s``)."""
    p = Path(path)
    with open(p, "wb") as fh:
        fh.truncate(size_bytes)
    return p
