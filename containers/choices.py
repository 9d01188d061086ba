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


class ContainerOp(models.TextChoices):
    """Operations on native LXC containers and a host's LXC setup (handlers: containers.handlers)."""

    CREATE = "container.create", "create a container"
    START = "container.start", "start"
    STOP = "container.stop", "stop"
    RESTART = "container.restart", "restart"
    FREEZE = "container.freeze", "freeze"
    UNFREEZE = "container.unfreeze", "unfreeze"
    DESTROY = "container.destroy", "destroy"
    SNAPSHOT = "container.snapshot", "snapshot (lxc-copy -s)"
    COPY = "container.copy", "full copy (lxc-copy)"
    ATTACH = "container.attach", "run a command (lxc-attach)"
    CONFIG_SET = "container.config.set", "set config keys"
    CONFIG_REPLACE = "container.config.replace", "replace the config file"
    FILES_LIST = "container.files.list", "list a directory"
    FILES_READ = "container.files.read", "read a file"
    LIMIT_SET = "container.limit.set", "set a cgroup limit"
    LIMIT_REMOVE = "container.limit.remove", "remove a saved cgroup limit"
    HOOK_SET = "container.hook.set", "set a hook"
    HOOK_REMOVE = "container.hook.remove", "remove a hook"
    MOUNT_ADD = "container.mount.add", "add a mount entry"
    MOUNT_REMOVE = "container.mount.remove", "remove a mount entry"
    TERMINAL = "container.terminal", "terminal session"
    HOST_AUTOSTART = "host.autostart", "autostart (lxc-autostart)"
    HOST_LXC_CONF = "host.lxc_conf", "LXC system config (lxc.conf)"
    HOST_MOUNT_ROOTS = "host.mount_roots", "allowed bind-mount roots"


class DomainOp(models.TextChoices):
    """Operations on libvirt-LXC domains (handlers: containers.libvirt.handlers)."""

    DEFINE = "libvirt.domain.define", "define"
    REDEFINE = "libvirt.domain.redefine", "edit the definition"
    START = "libvirt.domain.start", "start"
    SHUTDOWN = "libvirt.domain.shutdown", "shut down"
    DESTROY = "libvirt.domain.destroy", "force off"
    SUSPEND = "libvirt.domain.suspend", "suspend"
    RESUME = "libvirt.domain.resume", "resume"
    UNDEFINE = "libvirt.domain.undefine", "undefine"
    AUTOSTART = "libvirt.domain.autostart", "autostart on/off"
    ATTACH_DISK = "libvirt.domain.attach_disk", "attach a disk"
    DETACH_DISK = "libvirt.domain.detach_disk", "detach a disk"
    CONVERT = "libvirt.domain.convert", "convert a native container"


class ContainerAction(models.TextChoices):
    """Audit actions of container and domain requests that are not one operation kind: the page
    a refused POST was aimed at, and changes made in the request itself (no host command)."""

    ACTION = "container.action", "container action"
    CONFIG = "container.config", "config page"
    FILES = "container.files", "file browser"
    LIMIT = "container.limit", "limits page"
    HOOK = "container.hook", "hooks page"
    MOUNT = "container.mount", "mounts page"
    TERMINAL_TICKET = "container.terminal.ticket", "terminal ticket"
    TERMINAL_CLOSE = "container.terminal.close", "terminal closed"
    DOMAIN_ACTION = "libvirt.domain.action", "domain action"
    DOMAIN_DEFINE_XML = "libvirt.domain.define_xml", "define a domain from XML"
