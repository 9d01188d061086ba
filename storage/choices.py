from __future__ import annotations

from django.db import models


class PoolKind(models.TextChoices):
    DIR = "dir", "Directory"
    BTRFS = "btrfs", "Btrfs"
    LVM = "lvm", "LVM volume group"
    ZFS = "zfs", "ZFS pool"
