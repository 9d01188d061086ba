"""The event stream with Redis out of reach answers 503 at once instead of opening a stream with
nothing in it: the browser's EventSource then reports an error (it retries later, with a growing
delay) and never fires "open", which would make every live panel read itself again at each
reconnect (static/js/sse-catchup.js); the page keeps its slow polls meanwhile."""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import AsyncClient

from tests.hosttools import free_port


def _dead_redis_url() -> str:
    port = free_port()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    return f"redis://127.0.0.1:{port}/0"


@pytest.mark.django_db(transaction=True)
def test_the_stream_answers_503_when_redis_cannot_be_reached(settings, django_user_model):
    settings.REDIS_URL = _dead_redis_url()
    user = django_user_model.objects.create_user("streamer", password=None, is_superuser=True)

    async def get():
        client = AsyncClient()
        await client.aforce_login(user)
        return await client.get("/events/")

    # Its own thread and event loop: a browser test earlier in the session may leave Playwright's
    # loop running in this thread, where async_to_sync refuses to run.
    with ThreadPoolExecutor(1) as pool:
        response = pool.submit(asyncio.run, get()).result(timeout=30)
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/plain")
