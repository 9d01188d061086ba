"""Agent-side handlers of container operations: driver calls, then an inventory refresh."""

from __future__ import annotations

import hashlib
import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from django.conf import settings

from console.errors import ServiceError
from console.models import Operation
from console.paths import resolve_on_host
from console.runner import CommandCancelled, CommandError, Runner
from console.tasks import operation_handler, refresh_on_failure
from containers import mounts
from containers.choices import ContainerOp, Template
from containers.drivers import container_fs, debootstrap
from containers.drivers.lxc import LxcDriver
from containers.inventory import refresh_container
from containers.lxc_config import config_hash
from containers.models import Container, ContainerHook, FileBlob
from containers.validators import tarball_dirs
from storage.drivers.btrfs import BtrfsDriver


def _driver(op: Operation, runner: Runner) -> LxcDriver:
    return LxcDriver(runner, op.params["lxc_path"])


def _check_lxc_path(path: str) -> None:
    """An LXC path a container is made in, checked where it is used (its links resolved)."""
    resolve_on_host(path, field="lxc_path", what="an LXC path", directory=True)


def _refresh(op: Operation, runner: Runner) -> dict[str, Any]:
    container = refresh_container(op.host, op.params["lxc_path"], op.params["name"], runner)
    if container is None:
        return {"container_id": None, "state": None}
    return {"container_id": container.pk, "state": container.state, "pid": container.pid}


def _refresh_pools(op: Operation, *lxc_paths: str) -> None:
    """Read again the pools whose LXC path the operation changed (a subvolume, volume or dataset
    made or removed), before it ends: the pool page then agrees with the container list at once,
    not at the next periodic sync (and its "read ... ago" is true)."""
    from storage.inventory import refresh_pool
    from storage.models import Pool

    for pool in Pool.objects.filter(host=op.host, lxc_path__in=[p for p in lxc_paths if p]).select_related(
        "host"
    ):
        refresh_pool(pool, Runner(None))


def _refresh_on_failure(op: Operation) -> AbstractContextManager[None]:
    return refresh_on_failure(lambda: _refresh(op, Runner(None)))


@operation_handler(ContainerOp.CREATE)
def create(op: Operation, runner: Runner) -> dict[str, Any]:
    _check_lxc_path(op.params["lxc_path"])
    driver = _driver(op, runner)
    template, name = op.params["template"], op.params["name"]
    with _refresh_on_failure(op):
        if template == Template.DEBIAN:
            _create_debian(op, runner, driver)
        elif template == Template.TARBALL:
            _create_from_tarball(op, runner, driver)
        else:
            op.set_progress(5, f"lxc-create -t {template}")
            driver.create(
                name,
                template,
                backing_store=op.params.get("backing_store"),
                vgname=op.params.get("vgname"),
                fssize=op.params.get("fssize"),
                zfsroot=op.params.get("zfsroot"),
            )
    op.set_progress(98, "reading the new container's state")
    result = _refresh(op, runner)
    _refresh_pools(op, op.params["lxc_path"])
    return result


def _create_debian(op: Operation, runner: Runner, driver: LxcDriver) -> None:
    mirror = settings.DEBIAN_MIRROR or debootstrap.mirror_from_apt_sources()
    if not mirror:
        raise ServiceError(
            "no Debian mirror: set DEBIAN_MIRROR or add a Debian archive to the host's apt sources"
        )
    release, arch = op.params["release"], debootstrap.host_arch()
    op.set_progress(2, f"debootstrap {release} ({arch}) from {mirror}")
    tree, built = debootstrap.ensure_rootfs(
        runner,
        release=release,
        arch=arch,
        mirror=mirror,
        cache_dir=settings.DEBIAN_CACHE_DIR,
        include=settings.DEBIAN_INCLUDE,
        progress=lambda percent, label: op.set_progress(percent, label),
    )
    op.set_result({"cache": str(tree), "cache_built": built})
    op.set_progress(96, f"copying the cached {release} root filesystem")
    driver.create_from_cache(op.params["name"], tree, include="/usr/share/lxc/config/debian.common.conf")


def _create_from_tarball(op: Operation, runner: Runner, driver: LxcDriver) -> None:
    tarball = Path(
        resolve_on_host(
            op.params["tarball"],
            field="tarball",
            what="the tarball path",
            roots=tarball_dirs(settings.ROOTFS_TARBALL_DIRS),
        )
    )
    if not tarball.is_file():
        raise ServiceError(f"{tarball} does not exist on host {op.host.slug}")
    op.set_progress(10, f"extracting {tarball.name}")
    driver.create_from_tarball(op.params["name"], tarball, include="/usr/share/lxc/config/common.conf")


@operation_handler(ContainerOp.START)
def start(op: Operation, runner: Runner) -> dict[str, Any]:
    op.set_progress(10, "lxc-start")
    with _refresh_on_failure(op):
        _driver(op, runner).start(op.params["name"])
    return _refresh(op, runner)


@operation_handler(ContainerOp.STOP)
def stop(op: Operation, runner: Runner) -> dict[str, Any]:
    driver = _driver(op, runner)
    with _refresh_on_failure(op):
        if op.params.get("force"):
            op.set_progress(10, "lxc-stop -k")
            driver.kill(op.params["name"])
        else:
            op.set_progress(10, f"lxc-stop (killed after {op.params['timeout']} s)")
            driver.stop(op.params["name"], timeout=int(op.params["timeout"]))
    return _refresh(op, runner)


@operation_handler(ContainerOp.DESTROY)
def destroy(op: Operation, runner: Runner) -> dict[str, Any]:
    driver = _driver(op, runner)
    name = op.params["name"]
    with _refresh_on_failure(op):
        if op.params.get("stop_first") and driver.state(name) != "STOPPED":
            op.set_progress(10, "stopping before destroy")
            driver.stop(name, timeout=30)
        op.set_progress(50, "lxc-destroy")
        driver.destroy(name)
    result = _refresh(op, runner)
    _refresh_pools(op, op.params["lxc_path"])
    return result


@operation_handler(ContainerOp.RESTART)
def restart(op: Operation, runner: Runner) -> dict[str, Any]:
    driver = _driver(op, runner)
    with _refresh_on_failure(op):
        op.set_progress(10, "stopping")
        driver.stop(op.params["name"], timeout=int(op.params.get("timeout", 30)))
        op.set_progress(60, "starting")
        driver.start(op.params["name"])
    return _refresh(op, runner)


@operation_handler(ContainerOp.FREEZE)
def freeze(op: Operation, runner: Runner) -> dict[str, Any]:
    with _refresh_on_failure(op):
        op.set_progress(20, "lxc-freeze")
        _driver(op, runner).freeze(op.params["name"])
    return _refresh(op, runner)


@operation_handler(ContainerOp.UNFREEZE)
def unfreeze(op: Operation, runner: Runner) -> dict[str, Any]:
    with _refresh_on_failure(op):
        op.set_progress(20, "lxc-unfreeze")
        _driver(op, runner).unfreeze(op.params["name"])
    return _refresh(op, runner)


@operation_handler(ContainerOp.SNAPSHOT)
@operation_handler(ContainerOp.COPY)
def copy(op: Operation, runner: Runner) -> dict[str, Any]:
    snapshot = bool(op.params["snapshot"])
    new_name, new_path = op.params["new_name"], op.params["new_lxc_path"]
    _check_lxc_path(new_path)
    op.set_progress(10, "lxc-copy -s (copy-on-write)" if snapshot else "lxc-copy (full copy)")
    # A sync may have listed the half-made copy while lxc-copy ran: after a failure or a cancel
    # (the driver removed it) its row goes too.
    with refresh_on_failure(lambda: refresh_container(op.host, new_path, new_name, Runner(None))):
        _driver(op, runner).copy(op.params["name"], new_name, snapshot=snapshot, new_path=new_path)
    op.set_progress(90, "recording the copy")
    return record_copy(op, runner)


def record_copy(op: Operation, runner: Runner) -> dict[str, Any]:
    """The copy made by ``lxc-copy`` into the inventory, linked to its origin (also used by an
    agent that restarted while ``lxc-copy`` ran: containers.recovery)."""
    snapshot = bool(op.params["snapshot"])
    new_name, new_path = op.params["new_name"], op.params["new_lxc_path"]
    source = refresh_container(op.host, op.params["lxc_path"], op.params["name"], runner)
    copy_row = refresh_container(op.host, new_path, new_name, runner)
    if copy_row is None:
        raise ServiceError(f"lxc-copy reported success but {new_name!r} is not in {new_path}")
    kind = "snapshot" if snapshot else "copy"
    rootfs_path = copy_row.rootfs.partition(":")[2] or copy_row.rootfs
    if not snapshot and copy_row.store == "btrfs" and BtrfsDriver(runner).is_snapshot(rootfs_path):
        # LXC snapshots instead of copying when source and target share a btrfs filesystem.
        runner.log(
            "# note: LXC made a btrfs subvolume snapshot, not a full copy: the source and the target "
            "are on the same btrfs filesystem (copy into another pool's LXC path for a full copy)"
        )
        kind = "snapshot"
    if source is not None and copy_row.origin_id is None:
        copy_row.origin, copy_row.origin_kind = source, kind
        copy_row.save(update_fields=["origin", "origin_kind"])
    _refresh_pools(op, op.params["lxc_path"], new_path)
    return {"container_id": copy_row.pk, "store": copy_row.store, "rootfs": copy_row.rootfs, "kind": kind}


@operation_handler(ContainerOp.ATTACH)
def attach(op: Operation, runner: Runner) -> dict[str, Any]:
    op.set_progress(10, "lxc-attach")
    result = _driver(op, runner).attach(
        op.params["name"], list(op.params["argv"]), timeout=op.params["timeout"]
    )
    outcome = {"exit": result.returncode, "stdout": result.stdout[-65536:], "stderr": result.stderr[-65536:]}
    if result.returncode != 0:
        # It ran to its end: the page shows the exit status plainly, not a failure part way.
        op.set_result(outcome)
        op.set_progress(100, f"exited with status {result.returncode}")
        raise ServiceError(f"the command exited with status {result.returncode}")
    return outcome


@operation_handler(ContainerOp.CONFIG_SET)
def config_set(op: Operation, runner: Runner) -> dict[str, Any]:
    driver = _driver(op, runner)
    old = driver.read_config(op.params["name"])
    for key, value in op.params["changes"].items():
        driver.set_config_value(op.params["name"], key, value)
    driver.keep_if_loads(op.params["name"], old)
    return _refresh(op, runner)


@operation_handler(ContainerOp.CONFIG_REPLACE)
def config_replace(op: Operation, runner: Runner) -> dict[str, Any]:
    driver = _driver(op, runner)
    if config_hash(driver.read_config(op.params["name"])) != op.params["base_hash"]:
        raise ServiceError(
            "the config file changed on the host since the editor loaded it; nothing was written"
        )
    old = driver.read_config(op.params["name"])
    driver.write_config(op.params["name"], op.params["text"])
    runner.log(f"# wrote {driver.config_path(op.params['name'])}")
    driver.keep_if_loads(op.params["name"], old)
    return _refresh(op, runner)


def _init_pid(op: Operation, runner: Runner) -> int:
    info = _driver(op, runner).info(op.params["name"])
    if info.pid is None or info.state not in ("RUNNING", "FROZEN"):
        raise ServiceError(f"{op.params['name']} is not running (state {info.state})")
    return info.pid


@operation_handler(ContainerOp.FILES_LIST)
def files_list(op: Operation, runner: Runner) -> dict[str, Any]:
    pid = _init_pid(op, runner)
    runner.log(f"# listing {op.params['path']} under /proc/{pid}/root")
    try:
        listing = container_fs.list_dir(pid, op.params["path"], limit=settings.FILE_LIST_LIMIT)
    except container_fs.RootfsError as exc:
        raise ServiceError(exc.message) from None
    except container_fs.IsAFile as exc:
        # "List" on a file: the page offers the file itself (one click to download it).
        e = exc.entry
        return {
            "path": op.params["path"],
            "file": {"type": e.type, "size": e.size, "mode": e.mode, "mtime": e.mtime.isoformat()},
            "entries": [],
            "truncated": False,
        }
    return {
        "path": listing.path,
        "truncated": listing.truncated,
        "entries": [
            {
                "name": e.name,
                "type": e.type,
                "size": e.size,
                "mode": e.mode,
                "mtime": e.mtime.isoformat(),
                "target": e.target,
            }
            for e in listing.entries
        ],
    }


@operation_handler(ContainerOp.FILES_READ)
def files_read(op: Operation, runner: Runner) -> dict[str, Any]:
    pid = _init_pid(op, runner)
    runner.log(f"# reading {op.params['path']} under /proc/{pid}/root")
    try:
        data = container_fs.read_file(pid, op.params["path"], max_bytes=settings.FILE_DOWNLOAD_MAX_BYTES)
    except container_fs.RootfsError as exc:
        raise ServiceError(exc.message) from None
    digest = hashlib.sha256(data).hexdigest()
    FileBlob.objects.create(operation=op, path=op.params["path"], size=len(data), sha256=digest, content=data)
    runner.log(f"# {len(data)} bytes, sha256 {digest}")
    return {"path": op.params["path"], "size": len(data), "sha256": digest}


@operation_handler(ContainerOp.LIMIT_SET)
def limit_set(op: Operation, runner: Runner) -> dict[str, Any]:
    driver = _driver(op, runner)
    name, key, value = op.params["name"], op.params["key"], op.params["value"]
    applied = False
    if op.params["apply_live"]:
        op.set_progress(20, f"lxc-cgroup {key} {value}")
        try:
            driver.cgroup_set(name, key, value)
            applied = True
        except CommandError as exc:
            if not (op.params["persist"] and op.params["persist_if_refused"]):
                raise CommandError(
                    exc.message + ("; nothing was saved in the config" if op.params["persist"] else ""),
                    argv=exc.argv,
                    returncode=exc.returncode,
                    stderr=exc.stderr,
                ) from None
            runner.log(f"# {exc.message}; saving it in the config anyway, as asked")
    if op.params["persist"]:
        op.set_progress(60, f"lxc.cgroup.{key} = {value}")
        driver.set_config_value(name, f"lxc.cgroup.{key}", value)
    result = _refresh(op, runner)
    live = driver.cgroup_get(name, key) if applied else None
    return {**result, "key": key, "value": value, "applied": applied, "live": live}


@operation_handler(ContainerOp.LIMIT_REMOVE)
def limit_remove(op: Operation, runner: Runner) -> dict[str, Any]:
    driver = _driver(op, runner)
    key = op.params["key"]
    op.set_progress(40, f"removing lxc.cgroup.{key}")
    driver.set_config_value(op.params["name"], f"lxc.cgroup.{key}", None)
    return {**_refresh(op, runner), "key": key}


@operation_handler(ContainerOp.HOST_AUTOSTART)
def host_autostart(op: Operation, runner: Runner) -> dict[str, Any]:
    from containers.inventory import sync_lxc_path

    started: list[str] = []
    failures: list[CommandError] = []
    paths = op.host.lxc_paths
    for i, path in enumerate(paths):
        op.set_progress(int(90 * i / len(paths)), f"lxc-autostart -P {path}")
        # One path that fails must not keep the containers of the next ones down (at boot above all).
        try:
            started += LxcDriver(runner, path).autostart(
                group=op.params.get("group") or None, all_groups=bool(op.params.get("all"))
            )
        except CommandCancelled:
            raise  # a person stopped it: the next paths are not started
        except CommandError as exc:
            runner.log(f"# {exc.message}")
            failures.append(exc)
        sync_lxc_path(op.host, path, runner)
    if failures:
        raise CommandError(
            "; ".join(exc.message for exc in failures),
            argv=failures[0].argv,
            returncode=failures[0].returncode,
            stderr=failures[0].stderr,
        )
    return {"started": started}


@operation_handler(ContainerOp.HOOK_SET)
def hook_set(op: Operation, runner: Runner) -> dict[str, Any]:
    hook_type, script = op.params["hook"], op.params["script"]
    path = _driver(op, runner).write_hook(
        op.params["name"], hook_type, script, in_rootfs=hook_type == "start"
    )
    result = _refresh(op, runner)
    container = Container.objects.get(pk=result["container_id"])
    ContainerHook.objects.update_or_create(
        container=container, hook_type=hook_type, defaults={"path": path, "script": script}
    )
    return {**result, "path": path}


@operation_handler(ContainerOp.HOOK_REMOVE)
def hook_remove(op: Operation, runner: Runner) -> dict[str, Any]:
    hook_type = op.params["hook"]
    _driver(op, runner).remove_hook(op.params["name"], hook_type, in_rootfs=hook_type == "start")
    result = _refresh(op, runner)
    ContainerHook.objects.filter(container_id=result["container_id"], hook_type=hook_type).delete()
    return result


@operation_handler(ContainerOp.MOUNT_ADD)
def mount_add(op: Operation, runner: Runner) -> dict[str, Any]:
    source, target = op.params["source"], op.params["target"]
    # The host decides what the path really is: it must exist and stay inside the allowed
    # roots once its symbolic links are resolved.
    real = resolve_on_host(
        source, field="source", what="the host directory", directory=True, roots=op.params["roots"]
    )
    if not os.path.exists(real):
        raise ServiceError(f"{source} does not exist on host {op.host.slug}; nothing was changed")
    driver = _driver(op, runner)
    if op.params["create_target"]:
        # Made here, never through a link (LXC's create= option follows one planted inside).
        driver.make_mount_target(op.params["name"], target, directory=os.path.isdir(real))
    entry = mounts.mount_entry(real, target, read_only=op.params["read_only"], create=None)
    driver.add_config_line(op.params["name"], "lxc.mount.entry", entry)
    return {**_refresh(op, runner), "entry": entry}


@operation_handler(ContainerOp.MOUNT_REMOVE)
def mount_remove(op: Operation, runner: Runner) -> dict[str, Any]:
    if not _driver(op, runner).remove_config_line(op.params["name"], "lxc.mount.entry", op.params["entry"]):
        raise ServiceError("that mount entry is no longer in the config")
    return _refresh(op, runner)


@operation_handler(ContainerOp.TERMINAL)
def terminal_session(op: Operation, runner: Runner) -> dict[str, Any]:
    from containers.terminal import relay

    return relay(op, runner)


@operation_handler(ContainerOp.HOST_MOUNT_ROOTS)
def mount_roots(op: Operation, runner: Runner) -> dict[str, Any]:
    """Save the allowed bind-mount roots once each is an existing directory on this host."""
    from console.models import Host

    roots: list[str] = op.params["roots"]
    problems = []
    for root in roots:
        try:
            real = resolve_on_host(root, field="roots", what="an allowed root", directory=True)
        except ServiceError as exc:
            problems.append(exc.message)
            continue
        if not os.path.lexists(real):
            problems.append(f"{root} does not exist")
        elif not os.path.isdir(real):
            problems.append(f"{root} is not a directory")
        elif real != root:
            # The roots are compared as text with what the mounts page is given: the real one.
            problems.append(f"{root} is a symbolic link to {real}: give {real} itself")
    if problems:
        raise ServiceError(f"not saved, on host {op.host.slug}: " + "; ".join(problems))
    runner.log("# " + (", ".join(roots) or "no roots") + ": checked on the host")
    Host.objects.filter(pk=op.host_id).update(mount_roots=roots)
    return {"roots": roots}


@operation_handler(ContainerOp.HOST_LXC_CONF)
def lxc_system_config(op: Operation, runner: Runner) -> dict[str, Any]:
    """Write one key of the system LXC config and read every key back into the host's capabilities."""
    from console.models import Host
    from containers.drivers.lxc import read_system_config, write_system_config

    key, value = op.params["key"], op.params["value"]
    if key == "lxc.lxcpath":
        _check_lxc_path(value)
    op.set_progress(20, f"{settings.LXC_SYSTEM_CONF}: {key} = {value}")
    old = write_system_config(runner, settings.LXC_SYSTEM_CONF, key, value)
    values = read_system_config(runner)
    host = Host.objects.get(pk=op.host_id)
    caps = dict(host.capabilities)
    caps["lxc"] = {**caps.get("lxc", {}), "system_config": values}
    Host.objects.filter(pk=host.pk).update(capabilities=caps)
    return {"key": key, "value": values.get(key, ""), "file_existed": old is not None}
