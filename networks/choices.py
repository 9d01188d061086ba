from __future__ import annotations

from django.db import models


class ForwardMode(models.TextChoices):
    NONE = "none", "Isolated (none)"
    NAT = "nat", "NAT"
    ROUTE = "route", "Routed"


class NetworkOp(models.TextChoices):
    """libvirt network operations (handlers: networks.handlers)."""

    DEFINE = "libvirt.network.define", "define"
    START = "libvirt.network.start", "start"
    STOP = "libvirt.network.stop", "stop"
    UNDEFINE = "libvirt.network.undefine", "undefine"
    AUTOSTART = "libvirt.network.autostart", "autostart on/off"
    DHCP_HOST = "libvirt.network.dhcp_host", "DHCP reservation"


class NetworkAction(models.TextChoices):
    """Audit action of a network action request refused before its service knew the kind."""

    ACTION = "libvirt.network.action", "network action"
