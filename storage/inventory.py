"""Keep LoopDevice, Pool and HostStorage rows in step with the host (runs on the agent)."""

from __future__ import annotations

import json
import logging
import os

from django.db import transaction
from django.utils import timezone

from console.models import Host
from console.runner import CommandError, Runner
from storage import conf
from storage.drivers.dir import fs_usage
from storage.drivers.loop import LoopDriver, read_mounts
from storage.drivers.lvm import LvmDriver
from storage.drivers.pool import Reading, pool_type
from storage.drivers.zfs import ZfsDriver
from storage.models import HostStorage, LoopDevice, Pool

logger = logging.getLogger(__name__)


def _existing_ancestor(path: str) -> str:
    while path and not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path or "/"


def image_dir_free(image_dir: str) -> int:
    """Free bytes of the filesystem that holds (or will hold) the image directory."""
    return fs_usage(_existing_ancestor(image_dir))[2]


def sync_loop_devices(host: Host, runner: Runner | None = None) -> list[LoopDevice]:
    runner = runner or Runner(None)
    driver = LoopDriver(runner)
    mounts = read_mounts()
    infos = driver.list()
    rows = []
    with transaction.atomic():
        for info in infos:
            targets = [t for s, t, _ in mounts if s == info.device]
            fstype = next((fs for s, _, fs in mounts if s == info.device), "")
            if not fstype:
                try:
                    fstype = driver.probe(info.device).get("TYPE", "")
                except CommandError as exc:
                    logger.info("blkid %s: %s", info.device, exc)
            row, _ = LoopDevice.objects.update_or_create(
                host=host,
                device=info.device,
                defaults={
                    "backing_file": info.backing_file,
                    "size_bytes": info.size_bytes,
                    "fstype": fstype,
                    "mountpoint": targets[0] if targets else "",
                    "last_seen": timezone.now(),
                },
            )
            rows.append(row)
        LoopDevice.objects.filter(host=host).exclude(device__in=[i.device for i in infos]).delete()
    return rows


def _block_devices(runner: Runner, loops: list[LoopDevice]) -> list[dict]:
    try:
        result = runner.run(
            ["lsblk", "-J", "-b", "-o", "PATH,SIZE,TYPE,FSTYPE,MOUNTPOINT,PKNAME"],
            check=False,
            record=False,
            timeout=30,
        )
    except CommandError as exc:  # no lsblk: the loop devices below are still known
        logger.info("lsblk: %s", exc)
        result = None
    devices: list[dict] = []

    def add(rows: list[dict], parent: str) -> None:
        # Partitions (and a device-mapper volume on one) are listed with their parent, so a disk
        # whose partition is mounted is known to be in use. lsblk nests them as children, or lists
        # them flat with PKNAME (it does here, without udev).
        for row in rows:
            path = row.get("path") or ""
            holder = parent or (f"/dev/{row['pkname']}" if row.get("pkname") else "")
            devices.append(
                {
                    "path": path,
                    "size": int(row.get("size") or 0),
                    "type": row.get("type") or "",
                    "fstype": row.get("fstype") or "",
                    "mountpoint": row.get("mountpoint") or "",
                    **({"parent": holder} if holder else {}),
                }
            )
            add(row.get("children") or [], path)

    if result is not None and result.returncode == 0:
        add(json.loads(result.stdout or "{}").get("blockdevices", []), "")
    by_path = {d["path"]: d for d in devices}
    for loop in loops:  # lsblk has no FSTYPE without udev: blkid's answer is kept per loop device
        d = by_path.setdefault(loop.device, {"path": loop.device, "size": loop.size_bytes, "type": "loop"})
        d.update(fstype=loop.fstype, mountpoint=loop.mountpoint or d.get("mountpoint", ""))
    return sorted(by_path.values(), key=lambda d: d["path"])


def refresh_pool(pool: Pool, runner: Runner | None = None) -> Pool:
    """Capacity, usage and details of one pool, read on the host by its kind."""
    runner = runner or Runner(None)
    details = dict(pool.details)
    try:
        reading = pool_type(pool.kind).read(pool, runner, details)
    except (CommandError, OSError, ValueError) as exc:
        reading = Reading(health=f"could not read the pool: {exc}")
    capacity, used, health = reading.capacity, reading.used, reading.health
    Pool.objects.filter(pk=pool.pk).update(
        capacity_bytes=capacity,
        used_bytes=used,
        details=details,
        health=health[:255],
        last_seen=timezone.now(),
    )
    pool.capacity_bytes, pool.used_bytes, pool.details, pool.health = capacity, used, details, health[:255]
    return pool


def sync_host(host: Host, runner: Runner | None = None) -> None:
    """The periodic storage sync: loop devices, block devices, volume groups, pools."""
    runner = runner or Runner(None)
    loops = sync_loop_devices(host, runner)
    image_dir = conf.image_dir()
    try:
        vgs = [vg.name for vg in LvmDriver(runner).vgs()]
    except (CommandError, ValueError):
        vgs = []
    zpools: list[str] = []
    if host.capabilities.get("zfs", {}).get("kernel"):
        try:
            zpools = [p.name for p in ZfsDriver(runner).list_pools()]
        except (CommandError, ValueError):
            zpools = []
    HostStorage.objects.update_or_create(
        host=host,
        defaults={
            "image_dir": image_dir,
            "image_dir_free_bytes": image_dir_free(image_dir),
            "block_devices": _block_devices(runner, loops),
            "volume_groups": vgs,
            "zpools": zpools,
            "synced_at": timezone.now(),
        },
    )
    for pool in Pool.objects.filter(host=host).select_related("host"):
        refresh_pool(pool, runner)
