"""ASGI entry point: Django for HTTP, the terminal relay for websockets."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
django_app = get_asgi_application()

from console import hostwatch  # noqa: E402
from containers.terminal_ws import terminal_app  # noqa: E402  (needs Django set up)

# Records the running operations of hosts known dead as failed (console.hostwatch).
hostwatch.start()


async def application(scope: dict, receive, send) -> None:
    if scope["type"] == "websocket":
        await terminal_app(scope, receive, send)
    else:
        await django_app(scope, receive, send)
