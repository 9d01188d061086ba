"""Every change to storage goes through here: validate, authorize, lock, audit, enqueue.

Checks read the inventory the agent keeps (LoopDevice, Pool, HostStorage); the agent checks
again on the host before it runs anything destructive.
"""

from __future__ import annotations

import os
from typing import Any

from console.errors import Conflict, InvalidInput
from console.models import Host, Operation
from console.operations import RequestContext, active_operation, operation_request
from containers.models import Container
from storage import conf
from storage.choices import PoolKind, StorageOp
from storage.dependencies import loop_device_dependants, pool_dependants, refusal_message
from storage.drivers.pool import PoolType, pool_type
from storage.models import HostStorage, LoopDevice, Pool, device_lock_key, pool_lock_key
from storage.validators import parse_size, validate_device_path, validate_image_name, validate_pool_name


def _inventory(host: Host) -> HostStorage:
    inv = HostStorage.objects.filter(host=host).first()
    if inv is None:
        raise Conflict(
            f"the agent of host {host.slug} has not reported its storage yet; start it "
            "(make agent) and try again in a few seconds"
        )
    return inv


def create_loop_device(
    *, actor: Any, ctx: RequestContext, host: Host, name: str, size: str, fill: bool = False
) -> Operation:
    """A backing file in the image directory (``truncate -s`` sparse, or ``dd`` filled), attached
    to the first free loop device (``losetup --find --show``)."""
    image_dir = conf.image_dir()
    params: dict[str, Any] = {"name": name, "size": size, "fill": bool(fill)}
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=StorageOp.LOOP_CREATE,
        role="admin",
        host=host,
        target=f"loop device {host.slug}:{name}",
        params=params,
    ) as request:
        filename = validate_image_name(name)
        size_bytes = parse_size(size)
        if fill and size_bytes % (1024**2):
            raise InvalidInput("a filled file (dd) must be a whole number of MiB", field="size")
        inv = _inventory(host)
        free = inv.image_dir_free_bytes
        if free is not None and size_bytes > free:
            raise InvalidInput(
                f"{size} is larger than the free space of the filesystem holding {image_dir} "
                f"({free / 1024**3:.1f} GiB free)",
                field="size",
            )
        path = os.path.join(image_dir, filename)
        if LoopDevice.objects.filter(host=host, backing_file=path).exists():
            raise Conflict(f"{path} is already attached to a loop device", field="name")
        loops = host.capabilities.get("loop", {})
        if loops and LoopDevice.objects.filter(host=host).count() >= int(loops.get("devices", 8)):
            raise Conflict(f"all {loops.get('devices')} loop devices of host {host.slug} are in use")
        return request.queue(
            target=f"loop device {host.slug}:{filename}",
            lock_key=f"loopfile:{host.slug}:{path}",
            params={"path": path, "size_bytes": size_bytes, "fill": bool(fill), "image_dir": image_dir},
            audit_params={**params, "path": path, "size_bytes": size_bytes},
        )


def make_filesystem(*, actor: Any, ctx: RequestContext, loop: LoopDevice, wipe: bool = False) -> Operation:
    """``mkfs.ext4`` on a loop device, so it can be mounted or given to a domain as the chapter
    does; refused while a pool, a mount or a domain uses it, and over data unless ``wipe``."""
    host = loop.host
    params = {"device": loop.device, "backing_file": loop.backing_file, "wipe": bool(wipe)}
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=StorageOp.LOOP_MKFS,
        role="admin",
        host=host,
        target=loop.target,
        params=params,
    ) as request:
        dependants = loop_device_dependants(loop)
        if dependants:
            raise Conflict(refusal_message(loop.device, dependants))
        if active_operation(loop.lock_key):
            raise Conflict(f"an operation on {loop.device} is already running")
        if loop.fstype and not wipe:
            raise Conflict(
                f"{loop.device} already holds data ({loop.fstype}); tick 'wipe' to confirm that "
                "everything on it may be destroyed by mkfs.ext4",
                field="wipe",
            )
        return request.queue(lock_key=loop.lock_key, params=params, before={"fstype": loop.fstype})


def detach_loop_device(
    *, actor: Any, ctx: RequestContext, loop: LoopDevice, delete_file: bool = False
) -> Operation:
    """``losetup -d``, refused while a pool, a mount or a libvirt domain uses the device; optionally
    delete its file."""
    host = loop.host
    params = {"device": loop.device, "backing_file": loop.backing_file, "delete_file": bool(delete_file)}
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=StorageOp.LOOP_DETACH,
        role="admin",
        host=host,
        target=loop.target,
        params=params,
    ) as request:
        dependants = loop_device_dependants(loop)
        if dependants:
            raise Conflict(refusal_message(loop.device, dependants))
        image_dir = conf.image_dir()
        if delete_file and not loop.backing_file.startswith(image_dir + "/"):
            raise InvalidInput(
                f"only files under {image_dir} can be deleted by the console; detach without deleting",
                field="delete_file",
            )
        return request.queue(
            lock_key=loop.lock_key,
            params={**params, "image_dir": image_dir},
            before={"device": loop.device, "backing_file": loop.backing_file, "size_bytes": loop.size_bytes},
            audit_params=params,
        )


def _check_device(host: Host, device: str, *, wipe: bool, kind: PoolType) -> dict:
    inv = _inventory(host)
    dev = inv.block_device(device)
    if dev is None:
        raise InvalidInput(
            f"{device} is not a block device of host {host.slug}; attach a file to a loop device first",
            field="device",
        )
    if dev.get("type") not in ("loop", "disk", "part"):
        raise InvalidInput(
            f"{device} is a {dev.get('type')} device; choose a disk, partition or loop device", field="device"
        )
    if dev.get("mountpoint"):
        raise Conflict(f"{device} is mounted at {dev['mountpoint']}; unmount it first", field="device")
    # Partitions are listed with their disk ("parent"); a name prefix would take /dev/loop10 for one
    # of /dev/loop1.
    if any(child.get("parent") == device and child.get("mountpoint") for child in inv.block_devices):
        raise Conflict(f"a partition of {device} is mounted", field="device")
    used = Pool.objects.filter(host=host, source=device).first()
    if used is not None:
        raise Conflict(f"{device} already backs the {used.kind} pool {used.name}", field="device")
    if active_operation(device_lock_key(host.slug, device)):
        raise Conflict(f"an operation on {device} is already running", field="device")
    fstype = dev.get("fstype") or ""
    if fstype and not wipe:
        raise Conflict(
            f"{device} already holds data ({fstype}); tick 'wipe' to confirm that everything on it may be "
            f"destroyed by {kind.wiped_by}",
            field="wipe",
        )
    return dev


def create_pool(
    *,
    actor: Any,
    ctx: RequestContext,
    host: Host,
    name: str,
    kind: str,
    device: str | None = None,
    wipe: bool = False,
    vg_name: str | None = None,
    path: str | None = None,
) -> Operation:
    """A pool and its LXC path: ``dir`` (a directory), ``btrfs`` (mkfs.btrfs + mount), ``lvm``
    (pvcreate + vgcreate), ``zfs`` (zpool create, where the host has ZFS)."""
    params: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "device": device,
        "wipe": bool(wipe),
        "vg_name": vg_name,
    }
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=StorageOp.POOL_CREATE,
        role="admin",
        host=host,
        target=f"pool {host.slug}/{name}",
        params=params,
    ) as request:
        name = validate_pool_name(name)
        if kind not in PoolKind.values:
            raise InvalidInput(
                f"unknown pool kind {kind!r}; choose one of {', '.join(PoolKind.values)}", field="kind"
            )
        if Pool.objects.filter(host=host, name=name).exists():
            raise Conflict(f"host {host.slug} already has a pool named {name!r}", field="name")
        pool_kind = pool_type(kind)
        op_params: dict[str, Any] = {"name": name, "kind": kind, "wipe": bool(wipe)}
        dev = None
        if pool_kind.on_device:
            pool_kind.check_host(host)
            op_params["device"] = _device = validate_device_path(device)
            dev = _check_device(host, _device, wipe=wipe, kind=pool_kind)
        op_params |= pool_kind.validate(
            host,
            HostStorage.objects.filter(host=host).first(),
            name=name,
            device=dev,
            vg_name=vg_name,
            path=path,
            lxc_path=os.path.join(conf.pool_dir(), name),
        )
        if op_params["lxc_path"] in host.lxc_paths:
            raise Conflict(
                f"{op_params['lxc_path']} is already an LXC path of host {host.slug}", field="name"
            )
        return request.queue(
            target=f"pool {host.slug}/{name}",
            lock_key=pool_lock_key(host.slug, name),
            params=op_params,
            audit_params={**params, **op_params},
        )


def destroy_pool(*, actor: Any, ctx: RequestContext, pool: Pool, confirm: str = "") -> Operation:
    """Take a pool apart (unmount, vgremove + pvremove, ...), refused while anything depends on it."""
    host = pool.host
    params = {"name": pool.name, "kind": pool.kind, "source": pool.source, "lxc_path": pool.lxc_path}
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=StorageOp.POOL_DESTROY,
        role="admin",
        host=host,
        target=pool.target,
        params=params,
    ) as request:
        if confirm != pool.name:
            raise InvalidInput(f"type the pool's name ({pool.name}) to confirm", field="confirm")
        dependants = pool_dependants(pool)
        if dependants:
            raise Conflict(refusal_message(f"pool {pool.name}", dependants))
        busy = Container.objects.filter(host=host, lxc_path=pool.lxc_path).exists()
        if busy:  # pragma: no cover - pool_dependants lists them; kept as a guard
            raise Conflict(f"containers still live on pool {pool.name}")
        return request.queue(
            lock_key=pool.lock_key,
            params={
                **params,
                "pool_id": pool.pk,
                "mountpoint": pool.mountpoint,
                "vg_name": pool.vg_name,
                "zpool": pool.zpool,
            },
            before={"pool": params, "capacity_bytes": pool.capacity_bytes, "used_bytes": pool.used_bytes},
            audit_params=params,
        )
