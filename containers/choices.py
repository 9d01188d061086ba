from __future__ import annotations

from django.db import models


class Backend(models.TextChoices):
    LXC = "lxc", "LXC"
    LIBVIRT = "libvirt", "libvirt-LXC"


class State(models.TextChoices):
    """The states ``lxc-info -s`` reports."""

    STOPPED = "STOPPED", "Stopped"
    STARTING = "STARTING", "Starting"
    RUNNING = "RUNNING", "Running"
    STOPPING = "STOPPING", "Stopping"
    ABORTING = "ABORTING", "Aborting"
    FREEZING = "FREEZING", "Freezing"
    FROZEN = "FROZEN", "Frozen"
    THAWED = "THAWED", "Thawed"
    UNKNOWN = "UNKNOWN", "Unknown"


class Template(models.TextChoices):
    BUSYBOX = "busybox", "busybox (offline, fast)"
    DEBIAN = "debian", "Debian (debootstrap, cached per release)"
    TARBALL = "tarball", "Root filesystem tarball on the host"
