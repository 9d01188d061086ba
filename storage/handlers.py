"""Agent-side handlers of storage operations: check again on the host, run the drivers, refresh rows."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from console.errors import ServiceError
from console.models import Host, Operation
from console.paths import resolve_on_host
from console.runner import CommandError, Runner
from console.tasks import operation_handler
from storage.choices import StorageOp
from storage.drivers.dir import DirDriver
from storage.drivers.loop import LoopDriver, mountpoints_of
from storage.drivers.lvm import LvmDriver
from storage.drivers.pool import pool_type
from storage.inventory import image_dir_free, sync_host, sync_loop_devices
from storage.models import Pool
from storage.validators import check_system_dir


def _within(runner: Runner, path: str, root: str) -> bool:
    """Whether ``path`` stays under ``root`` once links are resolved, on the runner's host."""
    dirs = DirDriver(runner)
    real, root = dirs.resolve(path), dirs.resolve(root)
    return real.startswith(root.rstrip("/") + "/")


def _set_lxc_path(host_id: int, path: str, *, add: bool) -> None:
    """Add or remove a pool's LXC path in the host's extra paths (containers pages offer them)."""
    with transaction.atomic():
        host = Host.objects.select_for_update().get(pk=host_id)
        paths = [p for p in host.extra_lxc_paths if p != path]
        if add:
            paths.append(path)
        host.extra_lxc_paths = paths
        host.save(update_fields=["extra_lxc_paths"])


def _resync(op: Operation, runner: Runner) -> None:
    """The storage inventory after an operation, read where the operation ran (not logged in it)."""
    with runner.quiet() as quiet:
        sync_host(Host.objects.get(pk=op.host_id), quiet)


@operation_handler(StorageOp.LOOP_CREATE)
def loop_create(op: Operation, runner: Runner) -> dict[str, Any]:
    size, fill = int(op.params["size_bytes"]), bool(op.params["fill"])
    path = resolve_on_host(
        op.params["path"],
        field="name",
        what="the backing file",
        roots=[op.params["image_dir"]],
        realpath=DirDriver(runner).resolve,
    )
    free = image_dir_free(op.params["image_dir"])
    if size > free:
        raise ServiceError(f"only {free} bytes are free for {path}; nothing was created")
    driver = LoopDriver(runner)
    op.set_progress(10, f"{'dd (filled)' if fill else 'truncate -s (sparse)'} {path}")
    driver.create_file(path, size, fill=fill)
    op.set_progress(70, "losetup --find --show")
    try:
        device = driver.attach(path)
    except CommandError:
        driver.remove_file(path)
        runner.log(f"# removed {path}: it could not be attached")
        raise
    _resync(op, runner)
    return {"device": device, "path": path, "size_bytes": size}


@operation_handler(StorageOp.LOOP_DETACH)
def loop_detach(op: Operation, runner: Runner) -> dict[str, Any]:
    device, backing = op.params["device"], op.params["backing_file"]
    driver = LoopDriver(runner)
    current = {i.device: i for i in driver.list()}
    if device not in current:
        sync_loop_devices(op.host, Runner(None))
        raise ServiceError(f"{device} is not attached any more; nothing was done")
    if current[device].backing_file != backing:
        raise ServiceError(
            f"{device} is now attached to {current[device].backing_file}, not {backing}; nothing was done"
        )
    mounted = mountpoints_of(device)
    if mounted:
        raise ServiceError(f"{device} is mounted at {', '.join(mounted)}; unmount it first. Nothing was done")
    signature = driver.probe(device).get("TYPE", "")
    if signature == "LVM2_member":
        vgs = [pv.vg for pv in LvmDriver(runner).pvs() if pv.name == device and pv.vg]
        if vgs:
            raise ServiceError(
                f"{device} is a physical volume of volume group {vgs[0]}: vgremove {vgs[0]}, "
                f"then pvremove {device}, then detach. Nothing was done"
            )
    op.set_progress(30, f"losetup -d {device}")
    driver.detach(device)
    deleted = False
    if op.params.get("delete_file"):
        if _within(runner, backing, op.params["image_dir"]) and driver.device_kind(backing).startswith(
            "regular"
        ):
            driver.remove_file(backing)
            runner.log(f"# deleted {backing}")
            deleted = True
        else:
            runner.log(f"# kept {backing}: not a file under {op.params['image_dir']}")
    _resync(op, runner)
    return {"device": device, "backing_file": backing, "deleted": deleted}


def _check_blank(op: Operation, runner: Runner, device: str) -> None:
    """The host's own answer to "does this device hold data?" (the page's may be seconds old).

    Asked through the runner (stat, lsblk, blkid), so the answer is the host's that runs the
    commands."""
    loop = LoopDriver(runner)
    kind = loop.device_kind(device)
    if not kind:
        raise ServiceError(f"{device} does not exist on host {op.host.slug}; nothing was done")
    if kind != "block special file":
        raise ServiceError(f"{device} is not a block device (it is a {kind}); nothing was done")
    mounted = loop.mounted_parts(device)
    if mounted:
        raise ServiceError(
            f"{device} (or a partition of it) is mounted at {', '.join(mounted)}; nothing was done"
        )
    signature = loop.probe(device).get("TYPE", "")
    if signature and not op.params.get("wipe"):
        raise ServiceError(
            f"{device} holds {signature} data and wiping it was not confirmed; nothing was done"
        )
    if signature:
        runner.log(f"# {device} holds {signature}: wiping it, as confirmed")


@operation_handler(StorageOp.LOOP_MKFS)
def loop_mkfs(op: Operation, runner: Runner) -> dict[str, Any]:
    device, backing = op.params["device"], op.params["backing_file"]
    current = {i.device: i for i in LoopDriver(runner).list()}
    if current.get(device) is None or current[device].backing_file != backing:
        sync_loop_devices(op.host, Runner(None))
        raise ServiceError(f"{device} is no longer attached to {backing}; nothing was done")
    _check_blank(op, runner, device)
    op.set_progress(20, f"mkfs.ext4 {device}")
    # -F: mke2fs would otherwise ask on a device that holds a filesystem (wiping it was confirmed
    # above, or there is none).
    runner.run(["mkfs.ext4", "-q", "-F", device], timeout=300, error_message=f"mkfs.ext4 failed on {device}")
    _resync(op, runner)
    return {"device": device, "fstype": LoopDriver(runner).probe(device).get("TYPE", "")}


@operation_handler(StorageOp.POOL_CREATE)
def pool_create(op: Operation, runner: Runner) -> dict[str, Any]:
    p = op.params
    name, kind = p["name"], pool_type(p["kind"])
    # Where the pool really is once the host's symbolic links are followed, checked again here.
    lxc_path = resolve_on_host(
        p["lxc_path"],
        field="path",
        what="a pool's directory",
        directory=True,
        realpath=DirDriver(runner).resolve,
    )
    if not kind.on_device:
        shown = None if lxc_path == p["lxc_path"] else f"{p['lxc_path']} resolves to {lxc_path}, which"
        check_system_dir(lxc_path, shown=shown)
    else:
        _check_blank(op, runner, p.get("device") or "")
    fields = kind.create({**p, "lxc_path": lxc_path}, runner, op.set_progress)
    pool = Pool.objects.create(host=op.host, name=name, kind=kind.kind, lxc_path=lxc_path, **fields)
    _set_lxc_path(op.host_id, lxc_path, add=True)
    runner.log(f"# {lxc_path} is now an LXC path of host {op.host.slug}")
    op.set_progress(90, "reading capacity and usage")
    _resync(op, runner)
    pool.refresh_from_db()
    return {"pool_id": pool.pk, "lxc_path": lxc_path, "capacity_bytes": pool.capacity_bytes}


@operation_handler(StorageOp.POOL_DESTROY)
def pool_destroy(op: Operation, runner: Runner) -> dict[str, Any]:
    p = op.params
    pool = Pool.objects.select_related("host").filter(pk=p["pool_id"]).first()
    if pool is None:
        raise ServiceError("the pool is no longer in the inventory; nothing was done")
    # The host decides: containers the inventory may not know yet still block the destroy.
    on_host = DirDriver(runner).container_names(pool.lxc_path) if pool.lxc_path else []
    if on_host:
        raise ServiceError(
            f"containers still live in {pool.lxc_path}: {', '.join(on_host)}; destroy them first "
            "(snapshots before their origins). Nothing was done"
        )
    pool_type(pool.kind).destroy(pool, runner, op.set_progress)
    _set_lxc_path(op.host_id, pool.lxc_path, add=False)
    pool.delete()
    _resync(op, runner)
    return {"pool": p["name"], "removed": True}
