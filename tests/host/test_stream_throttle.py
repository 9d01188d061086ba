"""A list page's refreshes do not grow with the number of hosts: the event stream relays each
container's own message, but the list's ("containers") at most once per
STREAM_LIST_REFRESH_SECONDS, the last change of a burst included. Real Redis, the real relay."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
import redis

from console.events import CHANNEL
from console.stream import ListThrottle, _relay, _subscribe
from tests.hosttools import wait_for

pytestmark = pytest.mark.host


def test_the_throttle_sends_the_first_at_once_and_holds_the_rest_once():
    throttle = ListThrottle(1.0)
    assert throttle.admit("containers", 10.0)
    assert throttle.admit("container-7", 10.1)  # a row's own message is never held
    assert not throttle.admit("containers", 10.2)
    assert not throttle.admit("containers", 10.5)  # held already: still one due
    assert throttle.next_due() == 11.0
    assert throttle.flush(10.9) == []
    assert throttle.flush(11.0) == ["containers"] and throttle.next_due() is None
    assert not throttle.admit("containers", 11.5)
    assert ListThrottle(0).admit("containers", 11.6)  # 0: every change, as before


@pytest.mark.parametrize("interval", [1.0, 0.0])
def test_a_burst_of_container_changes_refreshes_a_list_page_once_or_twice(redis_url, settings, interval):
    settings.REDIS_URL = redis_url
    settings.STREAM_LIST_REFRESH_SECONDS = interval
    received: list[tuple[float, str]] = []
    done = threading.Event()

    async def read() -> None:
        subscribed = await _subscribe()
        assert subscribed is not None, "Redis is not reachable"
        async for chunk in _relay(*subscribed, None):
            now = time.monotonic()
            received.extend((now, line[7:]) for line in chunk.splitlines() if line.startswith("event: "))
            if done.is_set():
                break

    reader = threading.Thread(target=lambda: asyncio.run(read()), daemon=True)
    reader.start()
    client = redis.Redis.from_url(redis_url)
    wait_for(lambda: client.pubsub_numsub(CHANNEL)[0][1] >= 1, 5, what="the stream's subscription")
    started = time.monotonic()
    for pk in range(1, 31):  # 30 rows of many hosts change within 0.3 s
        client.publish(CHANNEL, json.dumps({"kind": "container", "id": pk, "host_id": pk % 7}))
        time.sleep(0.01)
    wait_for(lambda: sum(1 for _, n in received if n.startswith("container-")) == 30, 5, what="the rows")
    time.sleep(1.5)  # the held list message's window ends
    lists = [at - started for at, name in list(received) if name == "containers"]
    done.set()
    client.publish(CHANNEL, json.dumps({"kind": "container", "id": 0, "host_id": 0}))  # the reader ends
    reader.join(5)
    assert not reader.is_alive()
    client.close()
    if interval:
        # The first change at once, the last of the burst when the window ends: the page misses none.
        assert len(lists) == 2, lists
        assert lists[0] < 0.2 and 0.9 < lists[1] < 1.5, lists
    else:
        assert len(lists) == 30
