"""The container inventory: what the agents last saw on their hosts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from console.models import Host
from containers.choices import Backend, State


class Container(models.Model):
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="containers")
    name = models.CharField(max_length=63)
    backend = models.CharField(max_length=16, choices=Backend.choices, default=Backend.LXC)
    lxc_path = models.CharField(max_length=4096, blank=True)
    # Backing store as LXC reports it in lxc.rootfs.path ("dir", "btrfs", "lvm", "zfs", ...)
    store = models.CharField(max_length=32, blank=True)
    rootfs = models.CharField(max_length=4096, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.UNKNOWN)
    pid = models.PositiveIntegerField(null=True, blank=True)
    ips = models.JSONField(default=list, blank=True)
    autostart = models.BooleanField(default=False)
    start_delay = models.PositiveIntegerField(default=0)
    start_order = models.IntegerField(default=0)
    groups = models.JSONField(default=list, blank=True)
    # lxc-info's usage figures: cpu_ns, blkio_bytes, memory_bytes, kmem_bytes, link, tx/rx/total
    usage = models.JSONField(default=dict, blank=True)
    # Where this container was copied or snapshotted from.
    origin = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="copies"
    )
    origin_kind = models.CharField(max_length=16, blank=True)  # "snapshot" | "copy"
    # A native container's config file as the agent last read it (pages never read the host).
    config_text = models.TextField(blank=True)
    # A libvirt-LXC domain's XML definition as the agent last read it (virsh dumpxml).
    domain_xml = models.TextField(blank=True)
    # cgroup values read back from the running container ({"memory.limit_in_bytes": "268435456"}).
    cgroup_live = models.JSONField(default=dict, blank=True)
    last_seen = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["host__slug", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["host", "backend", "lxc_path", "name"], name="unique_container_per_store"
            )
        ]
        indexes = [models.Index(fields=["name"]), models.Index(fields=["state"])]

    def __str__(self) -> str:
        return f"{self.host.slug}/{self.name}"

    # What a page shows of the row besides usage figures (those refresh every few seconds; the
    # pages' slow poll shows them): a save that changes one of these is pushed to the pages.
    SHOWN_FIELDS = (
        "name", "lxc_path", "store", "rootfs", "state", "pid", "ips", "autostart", "start_delay",
        "start_order", "groups", "origin_id", "origin_kind", "config_text", "domain_xml",
    )  # fmt: skip

    def shown(self) -> tuple:
        return tuple(repr(getattr(self, f)) for f in self.SHOWN_FIELDS)

    @classmethod
    def from_db(cls, db, field_names, values):
        row = super().from_db(db, field_names, values)
        if not row.get_deferred_fields():
            row._shown_at_load = row.shown()
        return row

    @property
    def lock_key(self) -> str:
        return container_lock_key(self.host.slug, self.lxc_path, self.name)

    @property
    def target(self) -> str:
        return f"container {self.host.slug}/{self.name}"

    @property
    def host_offline(self) -> bool:
        """Its host's agent sends no heartbeat: ``state`` is only what it last reported (the host
        may be down, the container changed since), so pages say "state unknown (host offline)".
        Reads ``host``: list pages load it with the rows (``select_related``)."""
        return not self.host.agent_online

    @property
    def is_running(self) -> bool:
        return self.state in (State.RUNNING, State.FROZEN, State.FREEZING, State.THAWED)


def container_lock_key(host_slug: str, lxc_path: str, name: str) -> str:
    return f"container:{host_slug}:{lxc_path}:{name}"


class FileBlob(models.Model):
    """A file read from a running container for download (size-capped), kept with its operation."""

    operation = models.OneToOneField("console.Operation", on_delete=models.CASCADE, related_name="file_blob")
    path = models.CharField(max_length=4096)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    content = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.path} ({self.size} bytes)"


class ContainerHook(models.Model):
    """A hook script the console wrote for a container (the host keeps the executable file)."""

    container = models.ForeignKey(Container, on_delete=models.CASCADE, related_name="hooks")
    hook_type = models.CharField(max_length=16)
    path = models.CharField(max_length=4096)
    script = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["container", "hook_type"], name="one_hook_per_type")]

    def __str__(self) -> str:
        return f"{self.container} {self.hook_type}"


class TerminalTicket(models.Model):
    """A short-lived, single-use pass for one terminal websocket, bound to a user and a container."""

    token = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    container = models.ForeignKey(Container, on_delete=models.CASCADE, related_name="+")
    origin = models.CharField(max_length=255)
    # SHA-256 of the session key it was issued to: the websocket must come from that session.
    session_hash = models.CharField(max_length=64, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    operation = models.ForeignKey(
        "console.Operation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"terminal ticket for {self.user} on {self.container}"


def attached_block_devices(host: Host) -> dict[str, str]:
    """Host block devices attached to the host's libvirt domains: device -> domain name (read from
    the domains' stored XML; the storage pages use it to leave those devices alone)."""
    return attached_block_devices_of([host]).get(host.pk, {})


def attached_block_devices_of(hosts: list[Host]) -> dict[int, dict[str, str]]:
    """:func:`attached_block_devices` of several hosts in one query: host id -> its map."""
    from containers.libvirt.domain_xml import parse_domain_xml

    out: dict[int, dict[str, str]] = {}
    # Only the domains with a disk element are read and parsed: parsing all 200 domains' XML
    # took 70 ms of each storage page.
    domains = Container.objects.filter(
        host__in=hosts, backend=Backend.LIBVIRT, domain_xml__contains="<disk"
    ).only("host_id", "name", "domain_xml")
    for domain in domains:
        for disk in parse_domain_xml(domain.domain_xml).disks:
            if disk.get("source"):
                out.setdefault(domain.host_id, {})[disk["source"]] = domain.name
    return out
