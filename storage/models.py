"""Storage inventory: pools, loop-file block devices and what the agent saw of the host's disks.

Pages and services read these rows only; the agent keeps them in step with the host
(``storage.inventory.sync_host``) and after every storage operation.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from console.models import Host
from storage.choices import PoolKind


class Pool(models.Model):
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="pools")
    name = models.CharField(max_length=63)
    kind = models.CharField(max_length=16, choices=PoolKind.choices)
    # Device, file or directory the pool is made on; the LXC path containers on it use.
    source = models.CharField(max_length=4096, blank=True)
    lxc_path = models.CharField(max_length=4096, blank=True)
    # Where a btrfs filesystem or a zpool is mounted (its LXC path).
    mountpoint = models.CharField(max_length=4096, blank=True)
    # An LVM pool's volume group; a ZFS pool's zpool.
    vg_name = models.CharField(max_length=127, blank=True)
    zpool = models.CharField(max_length=255, blank=True)
    capacity_bytes = models.BigIntegerField(null=True, blank=True)
    used_bytes = models.BigIntegerField(null=True, blank=True)
    # What the agent last read: {"subvolumes": [...], "df": [...], "pvs": [...], "vgs": [...], "lvs": [...]}
    details = models.JSONField(default=dict, blank=True)
    # "ok", or why the agent could not read the pool ("not mounted", "volume group missing").
    health = models.CharField(max_length=255, blank=True, default="ok")
    last_seen = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["host__slug", "name"]
        constraints = [models.UniqueConstraint(fields=["host", "name"], name="unique_pool_per_host")]

    def __str__(self) -> str:
        return f"{self.host.slug}/{self.name}"

    @property
    def target(self) -> str:
        return f"pool {self.host.slug}/{self.name}"

    @property
    def lock_key(self) -> str:
        return pool_lock_key(self.host.slug, self.name)

    @property
    def used_percent(self) -> int | None:
        if not self.capacity_bytes or self.used_bytes is None:
            return None
        return max(0, min(100, round(100 * self.used_bytes / self.capacity_bytes)))


def pool_lock_key(host_slug: str, name: str) -> str:
    return f"pool:{host_slug}:{name}"


def device_lock_key(host_slug: str, device: str) -> str:
    return f"blockdev:{host_slug}:{device}"


class LoopDevice(models.Model):
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="loop_devices")
    device = models.CharField(max_length=64)
    backing_file = models.CharField(max_length=4096)
    size_bytes = models.BigIntegerField(default=0)
    # blkid's TYPE ("btrfs", "LVM2_member", "" when blank) and where it is mounted, if anywhere.
    fstype = models.CharField(max_length=32, blank=True)
    mountpoint = models.CharField(max_length=4096, blank=True)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["host__slug", "device"]
        constraints = [models.UniqueConstraint(fields=["host", "device"], name="unique_loop_per_host")]

    def __str__(self) -> str:
        return f"{self.host.slug}:{self.device}"

    @property
    def target(self) -> str:
        return f"loop device {self.host.slug}:{self.device}"

    @property
    def lock_key(self) -> str:
        return device_lock_key(self.host.slug, self.device)


class HostStorage(models.Model):
    """Per host: the image directory's free space and the block devices, as the agent last saw them."""

    host = models.OneToOneField(Host, on_delete=models.CASCADE, related_name="storage")
    image_dir = models.CharField(max_length=4096)
    image_dir_free_bytes = models.BigIntegerField(null=True, blank=True)
    # [{"path": "/dev/loop0", "size": 314572800, "type": "loop", "fstype": "btrfs", "mountpoint": ""}]
    block_devices = models.JSONField(default=list, blank=True)
    # Volume group names on the host (vgs), so a name already taken is refused before any command.
    volume_groups = models.JSONField(default=list, blank=True)
    # ZFS pool names on the host (zpool list), where it has ZFS: a name taken is refused the same way.
    zpools = models.JSONField(default=list, blank=True)
    synced_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"storage of {self.host.slug}"

    def block_device(self, path: str) -> dict | None:
        return next((d for d in self.block_devices if d.get("path") == path), None)

    def free_device_choices(self, taken: set[str] | frozenset[str] = frozenset()) -> list[tuple[str, str]]:
        """``free_block_devices`` as a select's choices: each path with its size, kind and contents."""
        return [
            (d["path"], f"{d['path']} — {size_label(d['size'])} {d['type']}, {d.get('fstype') or 'blank'}")
            for d in self.free_block_devices(taken)
        ]

    def free_block_devices(self, taken: set[str] | frozenset[str] = frozenset()) -> list[dict]:
        """The devices nothing uses, as the agent last saw them: a disk, partition or loop device
        with a size, not mounted, without partitions (a disk that has them is offered by its
        partitions), not a pool's source and not in ``taken`` (attached to a domain, say)."""
        sources = set(Pool.objects.filter(host_id=self.host_id).values_list("source", flat=True))
        parents = {d.get("parent") for d in self.block_devices if d.get("parent")}
        return [
            d
            for d in self.block_devices
            if d.get("type") in ("loop", "disk", "part")
            and d.get("size")
            and not d.get("mountpoint")
            and d.get("path") not in parents
            and d.get("path") not in sources
            and d.get("path") not in taken
        ]


def size_label(size: int) -> str:
    """A device size as people read it: whole GiB, or MiB to one decimal below a GiB."""
    return f"{size / 1024**3:g} GiB" if size >= 1024**3 else f"{round(size / 1024**2, 1):g} MiB"
