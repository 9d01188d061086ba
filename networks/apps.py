from __future__ import annotations

from django.apps import AppConfig


class NetworksConfig(AppConfig):
    name = "networks"

    def ready(self) -> None:
        # Registers the operation handlers (Celery's autodiscovery only finds tasks.py), the
        # periodic sync and the refresh on libvirt's lifecycle events.
        from console import agent, libvirt_events, subjects
        from networks import handlers, inventory  # noqa: F401

        subjects.register("network", _network_subject)
        if inventory.sync_host not in agent.INVENTORY_SYNCERS:
            agent.INVENTORY_SYNCERS.append(inventory.sync_host)
        libvirt_events.REFRESHERS["network"] = inventory.refresh_network
        if libvirt_events.start_libvirt_watcher not in agent.AGENT_WATCHERS:
            agent.AGENT_WATCHERS.append(libvirt_events.start_libvirt_watcher)


def _network_subject(op, rest: str):
    from django.urls import reverse

    from networks.models import Network

    name = rest.partition(":")[2]
    network = Network.objects.filter(host=op.host, name=name).first()
    return (f"network {name}", reverse("networks:detail", args=[network.pk]) if network else None)
