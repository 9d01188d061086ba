from __future__ import annotations

from django.db import models


class PoolKind(models.TextChoices):
    DIR = "dir", "Directory"
    BTRFS = "btrfs", "Btrfs"
    LVM = "lvm", "LVM volume group"
    ZFS = "zfs", "ZFS pool"


class StorageOp(models.TextChoices):
    """Storage operations (handlers: storage.handlers)."""

    LOOP_CREATE = "storage.loop.create", "create a loop device"
    LOOP_DETACH = "storage.loop.detach", "detach a loop device"
    LOOP_MKFS = "storage.loop.mkfs", "make a filesystem on a loop device (mkfs.ext4)"
    POOL_CREATE = "storage.pool.create", "create a pool"
    POOL_DESTROY = "storage.pool.destroy", "destroy a pool"
