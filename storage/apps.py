from __future__ import annotations

from django.apps import AppConfig


class StorageConfig(AppConfig):
    name = "storage"

    def ready(self) -> None:
        from console import agent
        from storage import inventory

        if inventory.sync_host not in agent.INVENTORY_SYNCERS:
            agent.INVENTORY_SYNCERS.append(inventory.sync_host)
