from __future__ import annotations

from django.apps import AppConfig


class NetworksConfig(AppConfig):
    name = "networks"
