from __future__ import annotations

from django.apps import AppConfig


class NetworksConfig(AppConfig):
    name = "networks"

    def ready(self) -> None:
        # Registers the operation handlers (Celery's autodiscovery only finds tasks.py).
        from networks import handlers  # noqa: F401
