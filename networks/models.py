"""libvirt networks as the agents last saw them (``virsh net-list --all`` + ``net-dumpxml``)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

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
    uuid = models.CharField(max_length=36, blank=True)
    # The network's XML as the agent last read it (pages never ask libvirt).
    xml = models.TextField(blank=True)
    # DHCP leases (network.DHCPLeases()) while the network is active: mac, ip, prefix, hostname, expires.
    leases = models.JSONField(default=list, blank=True)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["host__slug", "name"]
        constraints = [models.UniqueConstraint(fields=["host", "name"], name="unique_network_per_host")]

    def __str__(self) -> str:
        return f"{self.host.slug}/{self.name}"

    @property
    def lock_key(self) -> str:
        return network_lock_key(self.host.slug, self.name)

    @property
    def target(self) -> str:
        return f"network {self.host.slug}/{self.name}"


def network_lock_key(host_slug: str, name: str) -> str:
    return f"network:{host_slug}:{name}"
