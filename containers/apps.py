from __future__ import annotations

from django.apps import AppConfig


class ContainersConfig(AppConfig):
    name = "containers"

    def ready(self) -> None:
        from console import agent, subjects
        from containers import signals

        signals.connect()

        # The operation handlers register themselves with console.tasks on import; Celery's
        # autodiscovery only finds modules named tasks.py, so they are imported here.
        from containers import boot, handlers, inventory, monitor, recovery  # noqa: F401

        subjects.register("container", _container_subject)

        if inventory.sync_host not in agent.INVENTORY_SYNCERS:
            agent.INVENTORY_SYNCERS.append(inventory.sync_host)
        if monitor.start_monitors not in agent.AGENT_WATCHERS:
            agent.AGENT_WATCHERS.append(monitor.start_monitors)
        if boot.autostart_on_boot not in agent.AGENT_WATCHERS:
            agent.AGENT_WATCHERS.append(boot.autostart_on_boot)
        if monitor.start_usage_refresh not in agent.AGENT_WATCHERS:
            agent.AGENT_WATCHERS.append(monitor.start_usage_refresh)
        # libvirt-LXC domains: handlers, periodic sync, lifecycle events (networks do the same).
        from console import libvirt_events
        from containers.libvirt import handlers as libvirt_handlers  # noqa: F401
        from containers.libvirt import inventory as libvirt_inventory

        if libvirt_inventory.sync_host not in agent.INVENTORY_SYNCERS:
            agent.INVENTORY_SYNCERS.append(libvirt_inventory.sync_host)
        libvirt_events.REFRESHERS["domain"] = libvirt_inventory.refresh_domain
        if libvirt_events.start_libvirt_watcher not in agent.AGENT_WATCHERS:
            agent.AGENT_WATCHERS.append(libvirt_events.start_libvirt_watcher)


def _container_subject(op, rest: str):
    from django.urls import reverse

    from containers.models import Container

    _slug, _, path_and_name = rest.partition(":")
    lxc_path, _, name = path_and_name.rpartition(":")
    container = Container.objects.filter(host=op.host, lxc_path=lxc_path, name=name).first()
    return (f"container {name}", reverse("containers:detail", args=[container.pk]) if container else None)
