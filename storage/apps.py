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
