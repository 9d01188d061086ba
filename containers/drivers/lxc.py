"""Native LXC through the ``lxc-*`` tools (argument lists, never a shell string).

The PyPI ``lxc`` binding does not build on these hosts, and the tools are what also
works on remote hosts, so this driver builds argv for ``lxc-create``, ``lxc-start``,
``lxc-stop``, ``lxc-destroy``, ``lxc-info`` and ``lxc-ls`` and parses their output.
"""

from __future__ import annotations

import builtins
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from console.errors import InvalidInput
from console.identifiers import validate_container_name
from console.runner import CommandError, CommandResult, Runner
from containers.drivers import cgroupfs, container_fs
from containers.lxc_config import ContainerConfig, LxcConfig, check_key_value, parse_config
from storage.drivers.pool import pool_type

# How long a freeze on a cgroup v1 host polls the kernel's state before it leaves the wait to
# lxc-freeze (see LxcDriver.freeze).
FREEZE_POLL_SECONDS = 5.0

# lxc-info -H prints "Key:   value" lines; the keys we keep and how we name them.
_INFO_KEYS = {
    "Name": "name",
    "State": "state",
    "PID": "pid",
    "IP": "ips",
    "CPU use": "cpu_ns",
    "BlkIO use": "blkio_bytes",
    "Memory use": "memory_bytes",
    "KMem use": "kmem_bytes",
    "Link": "link",
    "TX bytes": "tx_bytes",
    "RX bytes": "rx_bytes",
    "Total bytes": "total_bytes",
}
_LOG_LINE = re.compile(r"^\S+ \S+ \d+\.\d+ (?P<level>[A-Z]+)\s+\S+ - [^ ]+ - (?P<message>.*)$")


@dataclass
class ContainerInfo:
    name: str
    state: str = "UNKNOWN"
    pid: int | None = None
    ips: list[str] = field(default_factory=list)
    autostart: bool = False
    groups: list[str] = field(default_factory=list)
    usage: dict[str, int | str] = field(default_factory=dict)


def parse_info(text: str) -> ContainerInfo:
    """Parse ``lxc-info -H`` output (several ``IP:`` lines are possible)."""
    values: dict[str, str] = {}
    ips: list[str] = []
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        name = _INFO_KEYS.get(key.strip())
        value = value.strip()
        if name is None:
            continue
        if name == "ips":
            ips.append(value)
        else:
            values[name] = value
    usage: dict[str, int | str] = {}
    for key in ("cpu_ns", "blkio_bytes", "memory_bytes", "kmem_bytes", "tx_bytes", "rx_bytes", "total_bytes"):
        if str(values.get(key, "")).isdigit():
            usage[key] = int(values[key])
    if values.get("link"):
        usage["link"] = str(values["link"])
    pid = values.get("pid")
    return ContainerInfo(
        name=str(values.get("name", "")),
        state=str(values.get("state", "UNKNOWN")),
        pid=int(pid) if isinstance(pid, str) and pid.isdigit() else None,
        ips=ips,
        usage=usage,
    )


_MONITOR_LINE = re.compile(r"^'(?P<name>[^']+)' changed state to \[(?P<state>[A-Z]+)\]")


def parse_monitor_line(line: str) -> tuple[str, str] | None:
    """``lxc-monitor`` prints ``'NAME' changed state to [STATE]``: return (name, state)."""
    m = _MONITOR_LINE.match(line.strip())
    return (m.group("name"), m.group("state")) if m else None


def overlay_origin(rootfs: str) -> str | None:
    """The rootfs an overlay snapshot was made from (``overlay:/lxc/a/rootfs:/lxc/b/overlay/delta``)."""
    if not rootfs.startswith("overlay:") and not rootfs.startswith("overlayfs:"):
        return None
    parts = rootfs.split(":")
    return parts[1] if len(parts) >= 3 else None


def hook_lines(text: str) -> list[str]:
    """What hooks printed, from an LXC log written at DEBUG level."""
    out = []
    level = ""
    for line in text.splitlines():
        m = _LOG_LINE.match(line)
        if m:
            level = m.group("level")
            marker = " produced output: "
            if marker in m.group("message"):
                out.append(m.group("message").split(marker, 1)[1])
        elif line.strip() and not line.startswith("lxc-") and level != "ERROR":
            # A hook's standard error reaches the log unprefixed; after an ERROR line, an
            # unprefixed line is the rest of that message (rsync's own summary, say).
            out.append(line)
    return out


def log_errors(text: str) -> list[str]:
    """The ERROR messages of an LXC log, in order (the first is usually the cause)."""
    return [
        m.group("message")
        for line in text.splitlines()
        if (m := _LOG_LINE.match(line)) and m.group("level") == "ERROR"
    ]


def first_error_in_log(text: str) -> str:
    """The first ERROR line of an LXC log file: the cause, before the cascade of consequences."""
    for line in text.splitlines():
        m = _LOG_LINE.match(line)
        if m and m.group("level") == "ERROR":
            return m.group("message")
    return ""


_TOOL_LINE = re.compile(r"^lxc-[a-z-]+: [^:]+: [^:]+: [^:]+: \d+ (?P<message>.*)$")
_CAUSE = re.compile(
    r"no space left|permission denied|read-only file system|no such file|not found|quota|"
    r"\berror\b|failed|cannot|unable",
    re.IGNORECASE,
)


def failure_cause(output: str) -> str:
    """The cause of a failed ``lxc-*`` command in its output: the first complaint of what LXC ran
    (a template's ``cp: ... No space left on device``), else LXC's own first error line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    own = [ln for ln in lines if not _TOOL_LINE.match(ln) and _CAUSE.search(ln)]
    if own:
        return own[0]
    for ln in lines:
        m = _TOOL_LINE.match(ln)
        if m:
            return m.group("message")
    return lines[-1] if lines else ""


# lxc-config's keys: the system-wide defaults of the lxc-* tools (``/etc/lxc/lxc.conf``).
SYSTEM_KEY_RE = re.compile(r"lxc(\.[a-z0-9_]+)+")
EDITABLE_SYSTEM_KEYS = ("lxc.lxcpath", "lxc.bdev.lvm.vg", "lxc.bdev.lvm.thin_pool", "lxc.bdev.zfs.root")


def read_system_config(runner: Runner) -> dict[str, str]:
    """Every ``lxc-config -l`` key with its value ('' when not set)."""
    out: dict[str, str] = {}
    for key in runner.run(["lxc-config", "-l"], record=False, timeout=10).stdout.split():
        if not SYSTEM_KEY_RE.fullmatch(key):
            continue
        result = runner.run(["lxc-config", key], check=False, record=False, timeout=10)
        value = result.stdout.strip()
        out[key] = "" if result.returncode != 0 or value.endswith("is not set.") else value
    return out


def write_system_config(runner: Runner, path: str, key: str, value: str) -> str | None:
    """Set ``key = value`` in the system LXC config (``lxc.conf``) and read it back with
    ``lxc-config``; returns the file's previous text (None: there was none). On a mismatch the
    old file is put back and CommandError says what LXC reads."""
    if key not in EDITABLE_SYSTEM_KEYS or len(value.splitlines()) != 1 or value != value.strip():
        raise ValueError(f"invalid system config {key!r} = {value!r}")
    conf = Path(path)
    old = conf.read_text() if conf.exists() else None
    conf.parent.mkdir(parents=True, exist_ok=True)
    tmp = conf.with_name(conf.name + ".console-new")
    tmp.write_text(LxcConfig(old or "").set(key, value).text())
    tmp.chmod(0o644)
    os.replace(tmp, conf)
    runner.log(f"# {path}: {key} = {value}")
    seen = runner.run(["lxc-config", key], check=False, timeout=10).stdout.strip()
    if seen != value:
        if old is None:
            conf.unlink()
        else:
            conf.write_text(old)
        raise CommandError(f"lxc-config reads {key} as {seen!r}, not {value!r}; {path} was put back")
    return old


class LxcDriver:
    """Native LXC containers under one LXC path of this host."""

    def __init__(self, runner: Runner, lxc_path: str) -> None:
        if not lxc_path.startswith("/"):
            raise ValueError("lxc_path must be absolute")
        self.runner = runner
        self.lxc_path = lxc_path

    def _n(self, name: str) -> list[str]:
        return ["-P", self.lxc_path, "-n", validate_container_name(name)]

    def config_path(self, name: str) -> Path:
        return Path(self.lxc_path) / validate_container_name(name) / "config"

    def exists(self, name: str) -> bool:
        return self.config_path(name).is_file()

    def create(
        self,
        name: str,
        template: str,
        template_args: list[str] | None = None,
        *,
        backing_store: str | None = None,
        vgname: str | None = None,
        fssize: str | None = None,
        zfsroot: str | None = None,
    ) -> None:
        """``lxc-create [-B STORE ...] -t TEMPLATE``; a failed create leaves nothing behind.

        ``-B lvm --vgname VG --fssize SIZE --fstype ext4`` puts the rootfs on a new logical volume
        (so ``lxc-copy -s`` makes LVM snapshots), ``-B zfs --zfsroot POOL`` on a ZFS dataset.
        """
        if self.exists(name):
            raise CommandError(f"a container named {name!r} already exists in {self.lxc_path}")
        # The pool kind's own arguments (``-B lvm --vgname ...``), each value checked there.
        store = pool_type(backing_store or "dir").lxc_create_args(
            vgname=vgname, fssize=fssize, zfsroot=zfsroot
        )
        argv = ["lxc-create", *self._n(name), *store, "-t", template]
        if template_args:
            argv += ["--", *template_args]
        os.makedirs(self.lxc_path, exist_ok=True)
        try:
            self.runner.run(argv, error_message=f"lxc-create could not create {name!r}")
        except CommandError as exc:
            self._remove_half_made(name)
            cause = failure_cause(f"{exc.stdout}\n{exc.stderr}")
            if cause:
                exc.message = f"{exc.message}: {cause}"
                exc.args = (exc.message,)
            raise
        # The host kernel has no AppArmor: "generated" would abort every start.
        self.set_config_value(name, "lxc.apparmor.profile", "unconfined")

    def create_from_tree(self, name: str, *, populate: Callable[[Path], object], include: str) -> None:
        """A container whose rootfs is filled by ``populate`` (a cached debootstrap tree, a tarball).

        ``lxc-create -t none`` writes the config from the host's default.conf; the rootfs
        path, the distribution's common config and the hostname are added here.
        """
        if self.exists(name):
            raise CommandError(f"a container named {name!r} already exists in {self.lxc_path}")
        os.makedirs(self.lxc_path, exist_ok=True)
        self.runner.run(
            ["lxc-create", *self._n(name), "-t", "none"],
            error_message=f"lxc-create could not create {name!r}",
        )
        try:
            rootfs = Path(self.lxc_path) / name / "rootfs"
            rootfs.mkdir(mode=0o755)
            populate(rootfs)
            try:  # the tree comes from a tarball: its /etc/hostname may be a link
                container_fs.write_hostname(rootfs, name)
            except container_fs.RootfsError as exc:
                raise CommandError(
                    f"the new root filesystem's /etc/hostname was not written: {exc.message}"
                ) from None
            with self.config_path(name).open("a") as fh:
                fh.write(f"lxc.include = {include}\nlxc.rootfs.path = dir:{rootfs}\nlxc.uts.name = {name}\n")
            self.set_config_value(name, "lxc.apparmor.profile", "unconfined")
        except BaseException:
            self._remove_half_made(name)
            raise

    def create_from_cache(self, name: str, tree: Path, *, include: str) -> None:
        """A container whose rootfs is a copy of a cached debootstrap tree."""
        from containers.drivers.debootstrap import copy_tree

        self.create_from_tree(
            name, populate=lambda rootfs: copy_tree(self.runner, tree, rootfs), include=include
        )

    def create_from_tarball(self, name: str, tarball: Path, *, include: str) -> None:
        """A container whose rootfs is a tarball of the host, extracted with its owners' ids."""
        self.create_from_tree(
            name,
            populate=lambda rootfs: self.runner.run(
                ["tar", "-xpf", str(tarball), "-C", str(rootfs), "--numeric-owner"],
                error_message=f"tar could not extract {tarball.name}",
            ),
            include=include,
        )

    def _remove_half_made(self, name: str) -> None:
        if (Path(self.lxc_path) / name).exists():
            self.runner.log(f"# removing the half-made container {name}")
            self.runner.run(["lxc-destroy", *self._n(name), "-f"], check=False)

    def log_path(self, name: str) -> Path:
        """The container's LXC log as the console starts it: the monitor process keeps writing
        into it until the container stops (stop and post-stop hooks included)."""
        return Path(self.lxc_path) / validate_container_name(name) / "lxc-console.log"

    @contextmanager
    def hook_output(self, log: Path) -> Iterator[list[str]]:
        """Copy what hooks printed into the operation log while the block runs.

        LXC logs a hook's standard output at DEBUG ("... produced output: LINE") and lets
        its standard error through unprefixed; both are collected from ``log``. The list
        yielded receives the ERROR messages logged meanwhile (the first is the cause).
        """
        start = log.stat().st_size if log.exists() else 0
        errors: list[str] = []
        try:
            yield errors
        finally:
            if log.exists():
                with log.open("rb") as fh:
                    fh.seek(start)
                    new = fh.read(1024 * 1024).decode(errors="replace")
                hooks = hook_lines(new)
                if hooks:
                    self.runner.log("\n".join(f"# hook: {line}" for line in hooks))
                errors.extend(log_errors(new))

    def start(self, name: str) -> None:
        """Start ``name`` in the background. ``lxc-start -d`` returns once the container reports
        RUNNING (LXC's state socket; it fails otherwise), so no ``lxc-wait`` follows it."""
        log = self.log_path(name)
        with self.hook_output(log) as errors:
            result = self.runner.run(
                ["lxc-start", *self._n(name), "-d", "-o", str(log), "-l", "DEBUG"], check=False
            )
        if result.returncode != 0:
            cause = errors[0] if errors else (result.stderr.strip().splitlines() or ["unknown cause"])[0]
            hook_failure = next((e for e in errors if "Failed to run lxc.hook." in e), None)
            if hook_failure:
                cause = f"{hook_failure} ({errors[0]})"
            if errors:
                self.runner.log("# lxc-start errors:\n" + "\n".join(errors))
            raise CommandError(
                f"container {name!r} failed to start: {cause}",
                argv=result.argv,
                returncode=result.returncode,
                stderr=result.stderr,
            )

    def stop(self, name: str, *, timeout: int = 30) -> None:
        """Clean stop (the halt signal), killed after ``timeout`` seconds (lxc-stop's own rule)."""
        with self.hook_output(self.log_path(name)):
            self.runner.run(
                ["lxc-stop", *self._n(name), "-t", str(timeout)],
                timeout=timeout + 30,
                error_message=f"lxc-stop could not stop {name!r}",
            )
            self._wait_stopped(name)

    def kill(self, name: str) -> None:
        with self.hook_output(self.log_path(name)):
            self.runner.run(["lxc-stop", *self._n(name), "-k"], error_message=f"could not kill {name!r}")
            self._wait_stopped(name)

    def _wait_stopped(self, name: str) -> None:
        # lxc-stop returns when init is gone; stop and post-stop hooks may still be running.
        self.runner.run(["lxc-wait", *self._n(name), "-s", "STOPPED", "-t", "30"], check=False, record=False)

    def freeze(self, name: str) -> None:
        """Freeze ``name``; ``lxc-freeze`` returns once the kernel says FROZEN (no ``lxc-wait``).

        With a cgroup v1 freezer, ``lxc-freeze`` writes FROZEN, reads the state back at once and,
        when the kernel still says FREEZING (it usually does for a few milliseconds), sleeps a whole
        second before it reads again: most freezes took 1 s here. So on such a host the state is
        written with ``lxc-cgroup``, read back with ``lxc-cgroup`` every few milliseconds until
        FROZEN (for at most FREEZE_POLL_SECONDS), and ``lxc-freeze`` then finds the container
        frozen at its first read: it tells LXC's state clients and ``lxc-monitor`` and returns. If
        the kernel is still freezing after the poll, ``lxc-freeze`` waits for it as it always did.
        With cgroup v2, ``lxc-freeze`` waits on ``cgroup.events`` and returns as soon as the
        container is frozen: it runs alone."""
        if "freezer" in cgroupfs.mounts():
            self.cgroup_set(name, "freezer.state", "FROZEN")
            deadline = time.monotonic() + FREEZE_POLL_SECONDS
            while self.cgroup_get(name, "freezer.state") == "FREEZING" and time.monotonic() < deadline:
                time.sleep(0.005)
        self.runner.run(["lxc-freeze", *self._n(name)], error_message=f"lxc-freeze could not freeze {name!r}")

    def unfreeze(self, name: str) -> None:
        """Thaw ``name``; ``lxc-unfreeze`` returns once the kernel says THAWED (no ``lxc-wait``)."""
        self.runner.run(
            ["lxc-unfreeze", *self._n(name)], error_message=f"lxc-unfreeze could not thaw {name!r}"
        )

    def copy(self, name: str, new_name: str, *, snapshot: bool, new_path: str | None = None) -> None:
        """``lxc-copy``: a copy-on-write snapshot (``-s``) where the store allows it, else a full copy."""
        validate_container_name(new_name)
        target_path = new_path or self.lxc_path
        if (Path(target_path) / new_name / "config").exists():
            raise CommandError(f"a container named {new_name!r} already exists in {target_path}")
        argv = ["lxc-copy", *self._n(name), "-N", new_name]
        if new_path and new_path != self.lxc_path:
            argv += ["-p", new_path]
        if snapshot:
            argv.append("-s")
        fd, tmp = tempfile.mkstemp(prefix=f"lxc-copy-{new_name}-", suffix=".log")
        os.close(fd)
        argv += ["-o", tmp, "-l", "DEBUG"]  # the clone hook's output
        try:
            with self.hook_output(Path(tmp)) as errors:
                result = self.runner.run(argv, check=False)
            if result.returncode != 0 or not (Path(target_path) / new_name / "config").is_file():
                detail = (
                    errors[0] if errors else (result.stderr.strip().splitlines() or ["no error printed"])[-1]
                )
                raise CommandError(
                    f"lxc-copy could not copy {name!r} to {new_name!r}: {detail}",
                    argv=argv,
                    returncode=result.returncode,
                    stderr=result.stderr,
                )
        except CommandError:
            if (Path(target_path) / new_name).exists():
                LxcDriver(self.runner, target_path)._remove_half_made(new_name)
            raise
        finally:
            os.unlink(tmp)

    def autostart(self, *, group: str | None = None, all_groups: bool = False) -> list[str]:
        """``lxc-autostart`` on this LXC path (the ungrouped containers, ``--group G`` or ``--all``),
        in lxc-autostart's own order; returns the names it was to start.

        lxc-autostart exits 1 without a word on a path that holds no container (an empty default
        path, a pool not mounted yet at boot): such a path is skipped, and the log says so. The
        lxc-start it runs writes its errors to LXC's log, not to stderr: the run logs into a file
        at DEBUG (hook output included) and a failure carries that log's ERROR lines."""
        if not any(Path(self.lxc_path).glob("*/config")):
            self.runner.log(f"# {self.lxc_path}: no containers in this LXC path, nothing to start")
            return []
        argv = ["lxc-autostart", "-P", self.lxc_path]
        if all_groups:
            argv.append("--all")
        elif group:
            argv += ["--group", group]
        listed = self.runner.run(
            [*argv, "--list"], error_message=f"lxc-autostart --list failed on {self.lxc_path}"
        )
        fd, tmp = tempfile.mkstemp(prefix="lxc-autostart-", suffix=".log")
        os.close(fd)
        argv += ["--logfile", tmp, "--logpriority", "DEBUG"]
        try:
            with self.hook_output(Path(tmp)) as errors:
                result = self.runner.run(argv, timeout=3600, check=False)
            if result.returncode != 0:
                words = errors or [ln for ln in result.stderr.splitlines() if ln.strip()]
                if errors:
                    self.runner.log("# LXC log errors:\n" + "\n".join(errors))
                raise CommandError(
                    f"lxc-autostart failed on {self.lxc_path} (exit status {result.returncode}): "
                    + (
                        "; ".join(dict.fromkeys(words[:3]))
                        if words
                        else "it printed nothing and logged no error"
                    ),
                    argv=argv,
                    returncode=result.returncode,
                    stderr=result.stderr,
                )
        finally:
            os.unlink(tmp)
        return listed.stdout.split()[::2]

    def attach(self, name: str, argv: list[str], *, timeout: float = 60) -> CommandResult:
        """Run one command inside the container (``lxc-attach -- argv``); returns its result."""
        if not argv:
            raise ValueError("a command is required")
        return self.runner.run(["lxc-attach", *self._n(name), "--", *argv], timeout=timeout, check=False)

    def cgroup_get(self, name: str, key: str) -> str | None:
        """Read a cgroup value of a running container (``lxc-cgroup -n NAME KEY``); None if unreadable."""
        result = self.runner.run(["lxc-cgroup", *self._n(name), key], check=False, record=False, timeout=10)
        return result.stdout.strip() if result.returncode == 0 else None

    def cgroup_set(self, name: str, key: str, value: str) -> None:
        """Apply a cgroup value live (``lxc-cgroup -n NAME KEY VALUE``)."""
        result = self.runner.run(["lxc-cgroup", *self._n(name), key, value], check=False)
        if result.returncode != 0:
            detail = [ln for ln in result.stderr.splitlines() if ln.strip()]
            reason = detail[-1].split(" - ")[-1] if detail else f"exit status {result.returncode}"
            raise CommandError(
                f"the kernel refused {key} = {value}: {reason}",
                argv=result.argv,
                returncode=result.returncode,
                stderr=result.stderr,
            )

    def destroy(self, name: str) -> None:
        # The container's directory goes away: its destroy hook logs into a temporary file.
        fd, tmp = tempfile.mkstemp(prefix=f"lxc-destroy-{name}-", suffix=".log")
        os.close(fd)
        try:
            with self.hook_output(Path(tmp)) as errors:
                result = self.runner.run(
                    ["lxc-destroy", *self._n(name), "-o", tmp, "-l", "DEBUG"], check=False
                )
            if result.returncode != 0:
                detail = (
                    errors[0] if errors else (result.stderr.strip().splitlines() or ["no error printed"])[-1]
                )
                raise CommandError(
                    f"lxc-destroy could not destroy {name!r}: {detail}",
                    argv=result.argv,
                    returncode=result.returncode,
                    stderr=result.stderr,
                )
        finally:
            os.unlink(tmp)

    def info(self, name: str) -> ContainerInfo:
        result = self.runner.run(["lxc-info", *self._n(name), "-H"], record=False)
        return parse_info(result.stdout)

    def state(self, name: str) -> str:
        result = self.runner.run(["lxc-info", *self._n(name), "-s", "-H"], record=False)
        return result.stdout.strip() or "UNKNOWN"

    def list(self, pids: Mapping[str, int | None] | None = None) -> list[ContainerInfo]:
        """Every container under the LXC path, with its state, and a running one's pid and
        addresses (autostart and groups: the inventory reads the config).

        Two plain listings (``lxc-ls -1``: all, and ``--active``) tell stopped from running;
        ``lxc-ls -f`` gave the states in one, but forks three processes per container to read
        its figures (110 ms of CPU per sync at 40 containers). A running container's pid is the
        one in ``pids`` (what the inventory last read) while it is still that container's init
        (:func:`cgroupfs.is_init`); then whether it is frozen is read from its freezer cgroup and
        its addresses from its network namespace's /proc files. Otherwise, and when those files
        cannot be read, ``lxc-info`` is asked for that container. Transitional states
        (STARTING, STOPPING) read as RUNNING here; lxc-monitor's events and the operations' own
        reads show them.

        lxc-ls leaves out a container whose config LXC cannot load; it still exists (its
        directory and config are there) and is listed here in state UNKNOWN, so it stays on the
        console and its config can be repaired. A directory with a config that the listing left
        out is asked with ``lxc-info`` first: a container made just after the listing (an
        ``lxc-create`` in a shell) is not one LXC cannot load."""
        if not os.path.isdir(self.lxc_path):
            return []
        names, active = self._ls(), set(self._ls("--active"))
        infos = []
        for name in names:
            if name not in active:
                infos.append(ContainerInfo(name=name, state="STOPPED"))
                continue
            pid = (pids or {}).get(name)
            dirs = cgroupfs.container_dirs(pid, name) if pid else None
            state = ips = None
            if pid and dirs and cgroupfs.is_init(pid, name, dirs, self.lxc_path):
                state, ips = cgroupfs.freezer_state(dirs), cgroupfs.addresses(pid)
            if state is None or ips is None:
                # (lxc-info failing: it stopped since the listing; the next sync reads it)
                infos.append(self._asked(name, failed="RUNNING"))
            else:
                infos.append(ContainerInfo(name=name, state=state, pid=pid, ips=ips))
        listed = {info.name for info in infos}
        for name in sorted(self.config_dirs()):
            if name not in listed:  # LXC cannot load its config (UNKNOWN), or made after the listing
                infos.append(self._asked(name, failed="UNKNOWN"))
        return infos

    def _asked(self, name: str, *, failed: str) -> ContainerInfo:
        """``lxc-info``'s state, pid and addresses of ``name`` (its usage is the refresh's), or
        the state ``failed`` alone when ``lxc-info`` fails."""
        try:
            info = self.info(name)
        except CommandError:
            return ContainerInfo(name=name, state=failed)
        return ContainerInfo(name=name, state=info.state, pid=info.pid, ips=info.ips)

    def _ls(self, *which: str) -> builtins.list[str]:
        """Names ``lxc-ls -1`` prints (``which``: a state filter such as ``--active``)."""
        result = self.runner.run(["lxc-ls", "-P", self.lxc_path, "-1", *which], record=False, timeout=60)
        return [line.strip() for line in result.stdout.splitlines() if line.strip()]

    def config_dirs(self) -> builtins.list[str]:  # list: the method above
        """Names of the directories under the LXC path that hold a config file (lxc-ls's rule)."""
        out = []
        for entry in os.scandir(self.lxc_path):
            try:
                validate_container_name(entry.name)
            except InvalidInput:
                continue
            if entry.is_dir(follow_symlinks=False) and os.path.isfile(os.path.join(entry.path, "config")):
                out.append(entry.name)
        return out

    def load_error(self, name: str) -> str:
        """'' when LXC loads the container's config, else LXC's own reason."""
        result = self.runner.run(
            ["lxc-info", *self._n(name), "-c", "lxc.rootfs.path", "-l", "ERROR"],
            check=False,
            record=False,
            timeout=10,
        )
        if result.returncode == 0:
            return ""
        # LXC's own ERROR line names the line it could not parse; "Failed to load config" does not.
        lines = [ln.strip() for ln in f"{result.stderr}\n{result.stdout}".splitlines() if ln.strip()]
        own = [m.group("message") for ln in lines if (m := _TOOL_LINE.match(ln))]
        return (own or lines or ["LXC cannot load the config"])[0]

    def keep_if_loads(self, name: str, old_text: str) -> None:
        """After writing a container's config: if LXC cannot load it, put ``old_text`` back and
        fail with LXC's reason (a config LXC cannot read hides the container from every lxc-* tool)."""
        error = self.load_error(name)
        if error:
            self.write_config(name, old_text)
            raise CommandError(f"LXC cannot load the new config ({error}); the previous config was put back")

    def read_config(self, name: str) -> str:
        return self.config_path(name).read_text()

    def config(self, name: str) -> ContainerConfig:
        try:
            return parse_config(self.read_config(name))
        except OSError:
            return ContainerConfig()

    def set_config_value(self, name: str, key: str, value: str | None) -> None:
        """Set ``key = value`` in the container's config, replacing every earlier line of that key
        (None removes the key; for lxc.group, "web,db" becomes one line per group)."""
        from containers.lxc_config import apply_setting

        if value is not None:
            # Refuse every character str.splitlines() would split on, not only "\n" and "\r".
            check_key_value(key, value)
        config = LxcConfig(self.read_config(name))
        apply_setting(config, key, value)
        self.write_config(name, config.text())
        path = self.config_path(name)
        self.runner.log(f"# {path}: {key} = {value}" if value is not None else f"# {path}: removed {key}")

    def add_config_line(self, name: str, key: str, value: str) -> None:
        """Append one more line of a multi-valued key (lxc.mount.entry, lxc.group, ...)."""
        config = LxcConfig(self.read_config(name)).add(key, value)
        self.write_config(name, config.text())
        self.runner.log(f"# {self.config_path(name)}: + {key} = {value}")

    def remove_config_line(self, name: str, key: str, value: str) -> bool:
        """Remove the lines ``key = value`` (exact value, as LXC reads it); True if one was there."""
        config = LxcConfig(self.read_config(name))
        if not config.remove(key, value):
            return False
        self.write_config(name, config.text())
        self.runner.log(f"# {self.config_path(name)}: - {key} = {value}")
        return True

    def remove_config_key(self, name: str, key: str) -> None:
        check_key_value(key, "")
        config = LxcConfig(self.read_config(name))
        config.remove(key)
        self.write_config(name, config.text())
        self.runner.log(f"# {self.config_path(name)}: removed {key}")

    def rootfs_dir(self, name: str, why: str) -> str:
        """The host directory of a container's rootfs (dir and btrfs stores; other stores are
        not a host directory while the container is stopped: CommandError starting with ``why``)."""
        config = LxcConfig(self.read_config(name))
        if config.store not in ("dir", "btrfs"):
            raise CommandError(
                f"{why}: its rootfs must be a directory on the host (a dir store), "
                f"not {config.store or 'none'}"
            )
        return config.rootfs_dir

    def make_mount_target(self, name: str, target: str, *, directory: bool) -> bool:
        """Make a bind mount's target inside the container's rootfs (see ``rootfs.make_target``);
        True when it was made, False when it was there."""
        root = self.rootfs_dir(name, "the console makes a mount target only in a rootfs it can reach")
        try:
            with container_fs.root_dir(root) as root_fd:
                made = container_fs.make_target(root_fd, target, directory=directory)
        except container_fs.RootfsError as exc:
            raise CommandError(f"the mount target was not made: {exc.message}") from None
        if made:
            self.runner.log(f"# made /{target} under {root} ({'directory' if directory else 'empty file'})")
        return made

    def _hook_place(self, name: str, hook_type: str, *, in_rootfs: bool) -> tuple[str, str, str]:
        """Where a hook script lives: (root directory, path under it, path written in the config).

        A start hook runs inside the container, so its script is copied into the container's
        rootfs, a tree the container can change: every access there goes through
        ``container_fs.write_file``/``remove_file``, which never follow a link. Other hooks live in
        the container's directory of the LXC path, which the container cannot reach.
        """
        if not re.fullmatch(r"[a-z-]{3,10}", hook_type):
            raise ValueError(f"invalid hook type {hook_type!r}")
        if in_rootfs:
            inside = f"/usr/local/lib/lxc-console/hook-{hook_type}"
            return self.rootfs_dir(name, "a start hook runs inside the container"), inside, inside
        home = str(Path(self.lxc_path) / validate_container_name(name))
        return home, f"hooks/{hook_type}", f"{home}/hooks/{hook_type}"

    def write_hook(self, name: str, hook_type: str, script: str, *, in_rootfs: bool = False) -> str:
        """Store an executable hook script and wire ``lxc.hook.<type>`` to it; returns the config path."""
        root, inside, config_path = self._hook_place(name, hook_type, in_rootfs=in_rootfs)
        try:
            with container_fs.root_dir(root) as root_fd:
                # 0750: a hook must be executable by root; it is not world-readable.
                container_fs.write_file(root_fd, inside, script.encode(), mode=0o750, make_dirs=True)
        except container_fs.RootfsError as exc:
            raise CommandError(f"the {hook_type} hook was not saved: {exc.message}") from None
        self.runner.log(f"# wrote {inside} under {root} (mode 0750)")
        self.set_config_value(name, f"lxc.hook.{hook_type}", config_path)
        return config_path

    def remove_hook(self, name: str, hook_type: str, *, in_rootfs: bool = False) -> None:
        """Unwire ``lxc.hook.<type>`` and remove its script (checked first: a link planted in
        its place or on its way makes the operation fail with nothing changed)."""
        root, inside, _ = self._hook_place(name, hook_type, in_rootfs=in_rootfs)
        try:
            with container_fs.root_dir(root) as root_fd:
                container_fs.file_status(root_fd, inside, regular=True)  # refuses before any change
                self.remove_config_key(name, f"lxc.hook.{hook_type}")
                if container_fs.remove_file(root_fd, inside):
                    self.runner.log(f"# removed {inside} under {root}")
        except container_fs.RootfsError as exc:
            raise CommandError(f"the {hook_type} hook was not removed: {exc.message}") from None

    def write_config(self, name: str, text: str) -> None:
        """Replace the config file atomically (same directory, then rename)."""
        path = self.config_path(name)
        tmp = path.with_name(".config.console-tmp")
        tmp.write_text(text)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
