from __future__ import annotations

from django.apps import AppConfig


class StorageConfig(AppConfig):
    name = "storage"

    def ready(self) -> None:
        from console import agent

        # handlers registers the operation handlers (Celery's autodiscovery only finds tasks.py).
        from storage import handlers, inventory  # noqa: F401

        if inventory.sync_host not in agent.INVENTORY_SYNCERS:
            agent.INVENTORY_SYNCERS.append(inventory.sync_host)
        from console import subjects

        subjects.register("pool", _pool_subject)
        subjects.register("blockdev", _device_subject)


def _pool_subject(op, rest: str):
    from django.urls import reverse

    from storage.models import Pool

    name = rest.partition(":")[2]
    pool = Pool.objects.filter(host=op.host, name=name).first()
    return (f"pool {name}", reverse("storage:pool-detail", args=[pool.pk]) if pool else None)


def _device_subject(op, rest: str):
    from django.urls import reverse

    return (f"device {rest.partition(':')[2]}", reverse("storage:index"))
