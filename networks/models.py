"""libvirt networks and host bridges (filled by the libvirt issue)."""

from __future__ import annotations

from django.db import models

from console.models import Host
from networks.choices import ForwardMode


class Network(models.Model):
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="networks")
    name = models.CharField(max_length=63)
    bridge = models.CharField(max_length=15, blank=True)
    forward_mode = models.CharField(max_length=8, choices=ForwardMode.choices, default=ForwardMode.NONE)
    address = models.GenericIPAddressField(null=True, blank=True)
    netmask = models.GenericIPAddressField(null=True, blank=True)
    dhcp_start = models.GenericIPAddressField(null=True, blank=True)
    dhcp_end = models.GenericIPAddressField(null=True, blank=True)
    active = models.BooleanField(default=False)
    autostart = models.BooleanField(default=False)
    persistent = models.BooleanField(default=True)

    class Meta:
        ordering = ["host__slug", "name"]
        constraints = [models.UniqueConstraint(fields=["host", "name"], name="unique_network_per_host")]

    def __str__(self) -> str:
        return f"{self.host.slug}/{self.name}"
