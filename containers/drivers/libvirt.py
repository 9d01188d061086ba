"""libvirt-LXC domains (``lxc:///``) through the agent's one connection per host URI.

Each call writes the equivalent ``virsh -c URI ...`` command into the operation transcript, so a
user sees what they would type by hand. Errors are :class:`console.drivers.libvirt_conn.LibvirtError`
(libvirt's own message, the virsh words) or ``LibvirtUnavailable`` when libvirtd cannot be reached.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from dataclasses import dataclass
from typing import Any

import libvirt

from console.drivers import libvirt_conn
from console.drivers.libvirt_conn import LibvirtError
from console.runner import Runner
from containers.libvirt.domain_xml import disk_xml

# libvirt's domain states in the inventory's words (lxc-info's).
STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: "UNKNOWN",
    libvirt.VIR_DOMAIN_RUNNING: "RUNNING",
    libvirt.VIR_DOMAIN_BLOCKED: "RUNNING",
    libvirt.VIR_DOMAIN_PAUSED: "FROZEN",
    libvirt.VIR_DOMAIN_SHUTDOWN: "STOPPING",
    libvirt.VIR_DOMAIN_SHUTOFF: "STOPPED",
    libvirt.VIR_DOMAIN_CRASHED: "STOPPED",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "FROZEN",
}


@dataclass
class DomainState:
    name: str
    state: str
    autostart: bool
    persistent: bool
    xml: str
    pid: int | None = None


def _pid_of(name: str) -> int | None:
    """The libvirt_lxc controller's PID, from the file the LXC driver keeps (optional)."""
    try:
        with open(f"/run/libvirt/lxc/{name}.pid") as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _state_of(dom: Any) -> DomainState:
    state, _reason = dom.state()
    name = dom.name()
    text = STATES.get(state, "UNKNOWN")
    return DomainState(
        name=name,
        state=text,
        autostart=bool(dom.autostart()) if dom.isPersistent() else False,
        persistent=bool(dom.isPersistent()),
        xml=dom.XMLDesc(0),
        pid=_pid_of(name) if text in ("RUNNING", "FROZEN") else None,
    )


class LibvirtDomainDriver:
    """Domain actions on one host URI; ``runner`` receives the transcript."""

    def __init__(self, uri: str, host_label: str, runner: Runner | None = None) -> None:
        self.uri = uri
        self.host_label = host_label
        self.runner = runner or Runner(None)

    # -- helpers
    def _call(self, words: list[str], func: Any, *, message: str = "", record: bool = True) -> Any:
        return libvirt_conn.logged_call(
            self.runner, self.uri, words, func, host_label=self.host_label, message=message, record=record
        )

    def _on_domain(self, words: list[str], name: str, action: Any, *, message: str = "") -> Any:
        def run(conn: Any) -> Any:
            return action(conn.lookupByName(name))

        return self._call(words, run, message=message)

    # -- reads
    def list(self) -> list[DomainState]:
        """Every domain of the URI, running or defined (``virsh list --all``)."""

        def run(conn: Any) -> list[DomainState]:
            states = []
            for dom in conn.listAllDomains(0):
                try:
                    states.append(_state_of(dom))
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:  # gone meanwhile
                        raise
            return states

        return self._call(["list", "--all"], run, record=False)

    def get(self, name: str) -> DomainState | None:
        def run(conn: Any) -> DomainState | None:
            try:
                return _state_of(conn.lookupByName(name))
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    return None
                raise

        return self._call(["dominfo", name], run, record=False)

    def dumpxml(self, name: str) -> str:
        return self._on_domain(["dumpxml", name], name, lambda d: d.XMLDesc(0))

    # -- changes
    def define(self, xml: str) -> str:
        """``virsh define``: returns the new domain's name."""
        return self._call(
            ["define", "/dev/stdin"], lambda c: c.defineXML(xml).name(), message="libvirt refused the XML"
        )

    def start(self, name: str) -> None:
        self._on_domain(["start", name], name, lambda d: d.create(), message=f"{name} did not start")

    def shutdown(self, name: str, timeout: float) -> None:
        """Ask init to shut down, wait up to ``timeout`` seconds for the domain to be off."""
        self._on_domain(
            ["shutdown", name], name, lambda d: d.shutdown(), message=f"{name} refused to shut down"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.get(name)
            if current is None or current.state == "STOPPED":
                return
            time.sleep(0.2)
        raise LibvirtError(
            f"{name} did not shut down within {timeout:g} s (its init may ignore the signal); "
            "use Destroy to force it off",
            argv=libvirt_conn.virsh_argv(self.uri, "shutdown", name),
        )

    def destroy(self, name: str) -> None:
        self._on_domain(
            ["destroy", name], name, lambda d: d.destroy(), message=f"{name} could not be forced off"
        )

    def suspend(self, name: str) -> None:
        self._on_domain(
            ["suspend", name], name, lambda d: d.suspend(), message=f"{name} could not be suspended"
        )

    def resume(self, name: str) -> None:
        self._on_domain(["resume", name], name, lambda d: d.resume(), message=f"{name} could not be resumed")

    def undefine(self, name: str) -> None:
        def run(dom: Any) -> None:
            if dom.isActive():
                raise LibvirtError(
                    f"{name} is running: shut it down or destroy it first; nothing was undefined",
                    argv=libvirt_conn.virsh_argv(self.uri, "undefine", name),
                )
            dom.undefine()

        self._on_domain(["undefine", name], name, run, message=f"{name} could not be undefined")

    def set_autostart(self, name: str, enabled: bool) -> None:
        words = ["autostart", name] if enabled else ["autostart", "--disable", name]
        self._on_domain(words, name, lambda d: d.setAutostart(1 if enabled else 0))

    def attach_disk(self, name: str, device: str, target: str) -> None:
        """Hot-plug a host block device into the running domain (``virsh attach-device --live``)."""
        check_block_device(device)
        xml = disk_xml(device, target)
        self._on_domain(
            ["attach-device", name, "/dev/stdin", "--live"],
            name,
            lambda d: d.attachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE),
            message=f"{device} could not be attached to {name}",
        )

    def detach_disk(self, name: str, device: str, target: str) -> None:
        xml = disk_xml(device, target)
        self._on_domain(
            ["detach-device", name, "/dev/stdin", "--live"],
            name,
            lambda d: d.detachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE),
            message=f"{device} could not be detached from {name}",
        )

    def from_native(self, config_text: str) -> str:
        """``virsh domxml-from-native lxc-tools CONFIG``."""
        return self._call(
            ["domxml-from-native", "lxc-tools", "CONFIG"],
            lambda c: c.domainXMLFromNative("lxc-tools", config_text, 0),
            message="libvirt could not convert the configuration",
        )


def check_block_device(path: str) -> None:
    """The device must exist here, be a block device, and not be mounted."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise LibvirtError(f"{path} does not exist on this host; nothing was attached") from None
    if not stat.S_ISBLK(st.st_mode):
        raise LibvirtError(f"{path} is not a block device; nothing was attached")
    real = os.path.realpath(path)
    with open("/proc/self/mounts") as fh:
        for line in fh:
            source = line.split(" ", 1)[0]
            if source in (path, real):
                raise LibvirtError(f"{path} is mounted on this host; unmount it first. Nothing was attached")
    holders = f"/sys/class/block/{os.path.basename(real)}/holders"
    if os.path.isdir(holders) and os.listdir(holders):
        raise LibvirtError(f"{path} is in use ({', '.join(os.listdir(holders))}); nothing was attached")


class ConsoleStream:
    """A running domain's console as a non-blocking libvirt stream (what ``virsh console`` uses).

    libvirt-python in the agent, not the ``virsh`` program: virsh on a terminal asks polkit for
    an interactive authorization that a headless host cannot give.
    """

    def __init__(self, uri: str, name: str, *, host_label: str = "") -> None:
        def open_console(conn: Any) -> Any:
            stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
            # libvirt-LXC accepts no flags here (not even VIR_DOMAIN_CONSOLE_FORCE).
            conn.lookupByName(name).openConsole(None, stream, 0)
            return stream

        self.stream = libvirt_conn.call(
            uri,
            open_console,
            host_label=host_label,
            virsh=("console", name),
            message=f"the console of {name} cannot be opened",
        )
        self.ended = False

    def read(self) -> bytes:
        """What the console printed since the last call (b"" if nothing); sets ``ended`` at EOF."""
        try:
            data = self.stream.recv(65536)
        except libvirt.libvirtError:
            self.ended = True
            return b""
        if data == -2:  # nothing to read yet
            return b""
        if not data:
            self.ended = True
            return b""
        return data

    def write(self, data: bytes) -> None:
        with contextlib.suppress(libvirt.libvirtError):
            self.stream.send(data)

    def close(self) -> None:
        with contextlib.suppress(libvirt.libvirtError):
            self.stream.abort()
