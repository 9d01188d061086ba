"""Agent-side handlers of libvirt-LXC domain operations: driver calls, then an inventory refresh."""

from __future__ import annotations

import os
import shutil
import stat
from contextlib import AbstractContextManager
from typing import Any

from console.drivers.libvirt_conn import LibvirtError, LibvirtUnavailable
from console.errors import ServiceError
from console.models import Operation
from console.runner import Runner
from console.tasks import operation_handler, refresh_on_failure
from containers.choices import DomainOp
from containers.drivers.libvirt import LibvirtDomainDriver
from containers.libvirt.domain_xml import (
    Conversion,
    check_domain_root,
    fix_converted,
    hint_for_conversion_error,
    parse_domain_xml,
    readable_by_libvirt,
    unconverted_lines,
)
from containers.libvirt.inventory import domain_driver, refresh_domain


def _driver(op: Operation, runner: Runner) -> LibvirtDomainDriver:
    return domain_driver(op.host, runner)


def _refresh(op: Operation, runner: Runner, name: str | None = None) -> dict[str, Any]:
    container = refresh_domain(op.host, name or op.params["name"], runner)
    if container is None:
        return {"container_id": None, "state": None}
    return {"container_id": container.pk, "state": container.state}


def _refresh_on_failure(op: Operation) -> AbstractContextManager[None]:
    return refresh_on_failure(lambda: _refresh(op, Runner(None)))


@operation_handler(DomainOp.DEFINE)
def define(op: Operation, runner: Runner) -> dict[str, Any]:
    # Its directories checked where libvirt will use them: /proc/self/root is the host's /.
    check_domain_root(op.params["xml"], on_host=True)
    rootfs = op.params.get("rootfs") or ""
    build = op.params.get("build")
    if build:
        _build_debian_rootfs(op, runner, rootfs, build["release"])
        try:
            return _define(op, runner, rootfs)
        except Exception:
            # Nothing half-made: the tree built for a domain that was not defined goes away.
            shutil.rmtree(os.path.dirname(rootfs), ignore_errors=True)
            raise
    return _define(op, runner, rootfs)


def _build_debian_rootfs(op: Operation, runner: Runner, rootfs: str, release: str) -> None:
    """The same cached debootstrap as native Debian containers, copied to the domain's directory."""
    from django.conf import settings

    from containers.drivers import container_fs, debootstrap

    if os.path.exists(rootfs):
        raise ServiceError(f"{rootfs} exists already on host {op.host.slug}; nothing was built")
    mirror = settings.DEBIAN_MIRROR or debootstrap.mirror_from_apt_sources()
    if not mirror:
        raise ServiceError(
            "no Debian mirror: set DEBIAN_MIRROR or add a Debian archive to the host's apt sources"
        )
    tree, _built = debootstrap.ensure_rootfs(
        runner,
        release=release,
        arch=debootstrap.host_arch(),
        mirror=mirror,
        cache_dir=settings.DEBIAN_CACHE_DIR,
        include=settings.DEBIAN_INCLUDE,
        progress=lambda percent, label: op.set_progress(min(percent, 90), label),
    )
    op.set_progress(92, f"copying the cached {release} root filesystem")
    os.makedirs(rootfs, mode=0o755)
    try:
        debootstrap.copy_tree(runner, tree, rootfs)
        container_fs.write_hostname(rootfs, op.params["name"])
    except container_fs.RootfsError as exc:
        shutil.rmtree(os.path.dirname(rootfs), ignore_errors=True)
        raise ServiceError(f"/etc/hostname of the new rootfs was not written: {exc.message}") from None
    except Exception:
        shutil.rmtree(os.path.dirname(rootfs), ignore_errors=True)
        raise


def boot_warnings(rootfs: str, init: str) -> list[str]:
    """What the console will show once the domain starts, read from its root filesystem here, on
    the host: a busybox init whose rcS runs udhcpc in the foreground shows no prompt until a DHCP
    lease comes. Only files inside ``rootfs`` are read: links are resolved inside it
    (container_fs), never on the host."""
    from containers.drivers import container_fs

    if os.path.basename(init) != "init":
        return []
    try:
        with container_fs.root_dir(rootfs) as root_fd:
            found = container_fs.stat_in_root(root_fd, init)
            if found is None or not stat.S_ISREG(found[0].st_mode):
                return []
            (init_st, init_name), busybox = found, container_fs.stat_in_root(root_fd, "/bin/busybox")
            # The busybox template hard-links /sbin/init to /bin/busybox; other trees link it
            # symbolically.
            same = busybox is not None and (busybox[0].st_dev, busybox[0].st_ino) == (
                init_st.st_dev,
                init_st.st_ino,
            )
            if os.path.basename(init_name) != "busybox" and not same:
                return []
            head = container_fs.read_head_in_root(root_fd, "/etc/init.d/rcS", 65536)
    except container_fs.RootfsError:
        return []
    if head is None:
        return []
    lines = head.decode("utf-8", errors="replace").splitlines()
    blocking = [
        ln.strip()
        for ln in lines
        if "udhcpc" in ln
        and not ln.lstrip().startswith("#")
        and not {"-n", "-b", "--now", "--background"} & set(ln.split())
    ]
    if not blocking:
        return []
    return [
        f"{init} is busybox init: it first runs /etc/init.d/rcS, whose '{blocking[0]}' waits in the "
        "foreground for a DHCP lease. The console shows no prompt until a lease comes, and none ever "
        "if the domain's interface gets no lease. For a shell on the console at once, define it with "
        "init /bin/sh."
    ]


def _define(op: Operation, runner: Runner, rootfs: str) -> dict[str, Any]:
    # The directory is checked here, on the host that will use it, not by the web process.
    if rootfs and not os.path.isdir(rootfs):
        raise ServiceError(f"the root filesystem directory {rootfs} does not exist on host {op.host.slug}; "
                           "nothing was defined")  # fmt: skip
    driver = _driver(op, runner)
    if driver.get(op.params["name"]) is not None:
        raise ServiceError(f"a domain named {op.params['name']!r} already exists on host {op.host.slug}")
    op.set_progress(30, "virsh define")
    runner.log(op.params["xml"])
    name = driver.define(op.params["xml"])
    warnings = boot_warnings(rootfs, parse_domain_xml(op.params["xml"]).init) if rootfs else []
    for warning in warnings:
        runner.log(f"# note: {warning}")
    return {**_refresh(op, runner, name), **({"warnings": warnings} if warnings else {})}


@operation_handler(DomainOp.REDEFINE)
def redefine(op: Operation, runner: Runner) -> dict[str, Any]:
    """``virsh edit``: the agent checks again that the domain exists and is shut off."""
    check_domain_root(op.params["xml"], on_host=True)
    name = op.params["name"]
    driver = _driver(op, runner)
    current = driver.get(name)
    if current is None:
        raise ServiceError(f"domain {name!r} no longer exists on host {op.host.slug}; nothing was changed")
    if current.state != "STOPPED":
        raise ServiceError(
            f"domain {name!r} is {current.state.lower()} now: shut it down first; nothing was changed"
        )
    op.set_progress(30, "virsh define (the edited definition)")
    runner.log(op.params["xml"])
    with _refresh_on_failure(op):
        driver.define(op.params["xml"])
    return _refresh(op, runner)


@operation_handler(DomainOp.START)
def start(op: Operation, runner: Runner) -> dict[str, Any]:
    op.set_progress(10, "virsh start")
    with _refresh_on_failure(op):
        _driver(op, runner).start(op.params["name"])
    return _refresh(op, runner)


@operation_handler(DomainOp.SHUTDOWN)
def shutdown(op: Operation, runner: Runner) -> dict[str, Any]:
    op.set_progress(10, f"virsh shutdown (waiting up to {op.params.get('timeout', 30)} s)")
    with _refresh_on_failure(op):
        _driver(op, runner).shutdown(op.params["name"], float(op.params.get("timeout", 30)))
    return _refresh(op, runner)


@operation_handler(DomainOp.DESTROY)
def destroy(op: Operation, runner: Runner) -> dict[str, Any]:
    op.set_progress(10, "virsh destroy (force off)")
    with _refresh_on_failure(op):
        _driver(op, runner).destroy(op.params["name"])
    return _refresh(op, runner)


@operation_handler(DomainOp.SUSPEND)
def suspend(op: Operation, runner: Runner) -> dict[str, Any]:
    with _refresh_on_failure(op):
        _driver(op, runner).suspend(op.params["name"])
    return _refresh(op, runner)


@operation_handler(DomainOp.RESUME)
def resume(op: Operation, runner: Runner) -> dict[str, Any]:
    with _refresh_on_failure(op):
        _driver(op, runner).resume(op.params["name"])
    return _refresh(op, runner)


@operation_handler(DomainOp.UNDEFINE)
def undefine(op: Operation, runner: Runner) -> dict[str, Any]:
    with _refresh_on_failure(op):
        _driver(op, runner).undefine(op.params["name"])
    return _refresh(op, runner)


@operation_handler(DomainOp.AUTOSTART)
def autostart(op: Operation, runner: Runner) -> dict[str, Any]:
    with _refresh_on_failure(op):
        _driver(op, runner).set_autostart(op.params["name"], bool(op.params["enabled"]))
    return _refresh(op, runner)


@operation_handler(DomainOp.ATTACH_DISK)
def attach_disk(op: Operation, runner: Runner) -> dict[str, Any]:
    op.set_progress(20, f"attaching {op.params['device']} as {op.params['target']}")
    with _refresh_on_failure(op):
        _driver(op, runner).attach_disk(op.params["name"], op.params["device"], op.params["target"])
    return _refresh(op, runner)


@operation_handler(DomainOp.DETACH_DISK)
def detach_disk(op: Operation, runner: Runner) -> dict[str, Any]:
    op.set_progress(20, f"detaching {op.params['target']}")
    with _refresh_on_failure(op):
        _driver(op, runner).detach_disk(op.params["name"], op.params["device"], op.params["target"])
    return _refresh(op, runner)


@operation_handler(DomainOp.CONVERT)
def convert(op: Operation, runner: Runner) -> dict[str, Any]:
    """domxml-from-native on the config file as it is on the host now; the result is for review."""
    from containers.drivers.lxc import LxcDriver

    config_text = LxcDriver(runner, op.params["lxc_path"]).read_config(op.params["name"])
    result = Conversion(not_converted=unconverted_lines(config_text))
    try:
        raw = _driver(op, runner).from_native(readable_by_libvirt(config_text))
    except LibvirtUnavailable:
        raise
    except LibvirtError as exc:
        message = exc.message
        result.error = message
        result.hint = hint_for_conversion_error(message)
        runner.log(f"# {message}\n# what to change: {result.hint}")
        op.set_result(result.__dict__)
        raise ServiceError(f"{message}. What to change: {result.hint}") from None
    result.xml, result.fixes = fix_converted(
        raw,
        add_console_device=bool(op.params.get("add_console", True)),
        name=op.params["new_name"],
        exists=os.path.exists,  # the bind sources are this host's directories
    )
    for fix in result.fixes:
        runner.log(f"# {fix}")
    return result.__dict__
