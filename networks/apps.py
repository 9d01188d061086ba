from __future__ import annotations

from django.apps import AppConfig


class NetworksConfig(AppConfig):
    name = "networks"

    def ready(self) -> None:
        # Registers the operation handlers (Celery's autodiscovery only finds tasks.py).
        from console import subjects
        from networks import handlers  # noqa: F401

        subjects.register("network", _network_subject)


def _network_subject(op, rest: str):
    from django.urls import reverse

    from networks.models import Network

    name = rest.partition(":")[2]
    network = Network.objects.filter(host=op.host, name=name).first()
    return (f"network {name}", reverse("networks:detail", args=[network.pk]) if network else None)
