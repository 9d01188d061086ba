from __future__ import annotations

from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Console core"

    def ready(self) -> None:
        from console import agent  # noqa: F401  (connects the worker signals)
