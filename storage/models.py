"""Storage pools and loop-file block devices (filled by the storage issue)."""

from __future__ import annotations

from django.db import models

from console.models import Host
from storage.choices import PoolKind


class Pool(models.Model):
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="pools")
    name = models.CharField(max_length=63)
    kind = models.CharField(max_length=16, choices=PoolKind.choices)
    # Device, file or directory the pool is made on; the LXC path containers on it use.
    source = models.CharField(max_length=4096, blank=True)
    lxc_path = models.CharField(max_length=4096, blank=True)
    capacity_bytes = models.BigIntegerField(null=True, blank=True)
    used_bytes = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["host__slug", "name"]
        constraints = [models.UniqueConstraint(fields=["host", "name"], name="unique_pool_per_host")]

    def __str__(self) -> str:
        return f"{self.host.slug}/{self.name}"


class LoopDevice(models.Model):
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="loop_devices")
    device = models.CharField(max_length=64)
    backing_file = models.CharField(max_length=4096)
    size_bytes = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["host__slug", "device"]
        constraints = [models.UniqueConstraint(fields=["host", "device"], name="unique_loop_per_host")]

    def __str__(self) -> str:
        return f"{self.host.slug}:{self.device}"
