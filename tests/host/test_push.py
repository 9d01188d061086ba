"""Push: what console.events publishes on a real Redis, and what the event stream (console.stream,
served by uvicorn) relays to whom; a stream whose client went away leaves no Redis connection."""

from __future__ import annotations

import http.client
import json
import socket
import time

import pytest
import redis

from console import events
from console.models import Host, Operation
from console.stream import lock_event
from containers.models import Container
from tests.host.helpers import browser_session
from tests.hosttools import free_port, wait_for

pytestmark = pytest.mark.host


@pytest.fixture
def bus(redis_url, settings):
    """Publishing pointed at the test Redis; yields a subscriber's next-message function."""
    settings.REDIS_URL = redis_url
    events.reset()
    client = redis.Redis.from_url(redis_url)
    sub = client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(events.CHANNEL)
    wait_for(lambda: client.pubsub_numsub(events.CHANNEL)[0][1] >= 1, 5, what="the subscription")

    def received(within: float = 2.0) -> list[dict]:
        out, end = [], time.monotonic() + within
        while (left := end - time.monotonic()) > 0:
            message = sub.get_message(timeout=left)
            if message:
                out.append(json.loads(message["data"]))
        return out

    yield received
    sub.close()
    client.close()
    events.reset()


def _op(host: Host, **kw) -> Operation:
    return Operation.objects.create(
        kind="container.start", host=host, target="container x/web", lock_key="container:x:/p:web", **kw
    )


def test_operation_changes_are_published_with_their_status(bus, transactional_db, host):
    op = _op(host)
    op.claim("agent-a")
    op.finish("succeeded")
    got = [e for e in bus(1.0) if e["kind"] == "operation"]
    assert [e["status"] for e in got] == ["running", "succeeded"]
    expected = {"kind": "operation", "id": op.pk, "host_id": host.pk, "lock_key": op.lock_key}
    assert all(e == {**expected, "status": e["status"]} for e in got)


def test_log_and_progress_events_are_limited_per_operation_and_the_last_is_sent(bus, transactional_db, host):
    op = _op(host, status="running")
    for i in range(50):
        op.append_log(f"line {i}\n")
        op.set_progress(i)
    got = bus(1.0)
    assert 1 <= len(got) <= 3, got  # 100 writes in well under 0.25 s: one now, one trailing
    assert all(e["minor"] and e["id"] == op.pk for e in got)
    op.finish("failed", error="boom")  # a status change is never held back
    assert [e.get("status") for e in bus(0.5)] == ["failed"]


def test_container_rows_publish_when_what_a_page_shows_changes(bus, transactional_db, host):
    row = Container.objects.create(host=host, name="web", lxc_path="/p", state="STOPPED")
    assert bus(0.5) == [{"kind": "container", "id": row.pk, "host_id": host.pk}]
    row = Container.objects.get(pk=row.pk)
    row.usage = {"memory_bytes": 5}
    row.save()  # the usage refresh: not pushed (the slow poll shows it)
    assert bus(0.5) == []
    row.state = "RUNNING"
    row.save()
    assert bus(0.5) == [{"kind": "container", "id": row.pk, "host_id": host.pk}]
    pk = row.pk
    Container.objects.filter(pk=pk).delete()
    assert bus(0.5) == [{"kind": "container", "id": pk, "host_id": host.pk}]


def test_a_write_does_not_fail_or_wait_when_redis_is_down(transactional_db, host, settings, caplog):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    events.reset()
    try:
        op = _op(host)
        started = time.monotonic()
        op.claim("agent-a")
        for i in range(20):
            op.append_log(f"line {i}\n")
        op.finish("succeeded")
        elapsed = time.monotonic() - started
        op.refresh_from_db()
        assert op.status == "succeeded" and op.log.count("line") == 20
        assert elapsed < 1.0, elapsed  # one failed connect, then the 5-s quiet window
        assert "could not publish" in caplog.text
        assert events.publish("operation", op.pk, host.pk) is False
    finally:
        events.reset()


# --- the stream, served by uvicorn --------------------------------------------------------------


class Stream:
    """A browser's EventSource, by hand: a GET of /events/ read event by event."""

    def __init__(self, web: str, headers: dict[str, str]) -> None:
        hostname, port = web.split(":")
        self.conn = http.client.HTTPConnection(hostname, int(port), timeout=10)
        self.conn.request("GET", "/events/", headers={**headers, "Accept": "text/event-stream"})
        self.response = self.conn.getresponse()

    def events(self, within: float) -> list[tuple[str, dict]]:
        """The (name, data) of every message that arrives within ``within`` seconds."""
        self.conn.sock.settimeout(within)
        out: list[tuple[str, dict]] = []
        name, end = None, time.monotonic() + within
        try:
            while time.monotonic() < end:
                self.conn.sock.settimeout(max(0.05, end - time.monotonic()))
                line = self.response.fp.readline().decode()
                if line.startswith("event: "):
                    name = line[7:].strip()
                elif line.startswith("data: ") and name:
                    out.append((name, json.loads(line[6:])))
                    name = None
        except TimeoutError:
            pass
        return out

    def close(self) -> None:
        self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.conn.close()


def _subscribers(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return client.pubsub_numsub(events.CHANNEL)[0][1]
    finally:
        client.close()


def test_a_viewer_of_one_host_gets_only_that_hosts_events(bus, web, redis_url, make_user, host):
    other = Host.objects.create(slug="other", name="other")
    viewer = make_user("stream-viewer", role="view", hosts=[host])
    chief = make_user("stream-super", role=None, superuser=True)
    users = {"viewer": viewer, "chief": chief}
    streams = {who: Stream(web, browser_session(user)[1]) for who, user in users.items()}
    try:
        for stream in streams.values():
            assert stream.response.status == 200
            assert stream.response.getheader("Content-Type").startswith("text/event-stream")
        wait_for(lambda: _subscribers(redis_url) >= 3, 10, what="both streams subscribed")
        mine, theirs = (
            _op(host),
            Operation.objects.create(
                kind="container.start",
                host=other,
                target="container other/db",
                lock_key="container:other:/p:db",
            ),
        )
        theirs.claim("b")
        mine.claim("a")
        row = Container.objects.create(host=other, name="db", lxc_path="/p", state="STOPPED")
        seen = streams["viewer"].events(1.5)
        assert [name for name, _ in seen] == [f"operation-{mine.pk}", lock_event(mine.lock_key), "operations"]
        assert all(data["host_id"] == host.pk for _, data in seen)
        names = {name for name, _ in streams["chief"].events(1.5)}
        assert {f"operation-{theirs.pk}", f"operation-{mine.pk}", f"container-{row.pk}"} <= names
    finally:
        for stream in streams.values():
            stream.close()
    # The client went away: each stream ends and its Redis connection is closed.
    wait_for(lambda: _subscribers(redis_url) == 1, 20, what="the streams' subscriptions to end")
    client = redis.Redis.from_url(redis_url)
    try:
        names = [c.get("name", "") for c in client.client_list()]
        subscribed = [c for c in client.client_list() if int(c.get("sub", 0)) > 0]
        assert len(subscribed) == 1, (names, subscribed)  # the test's own subscriber only
    finally:
        client.close()


def test_an_anonymous_stream_is_sent_to_the_login(web):
    hostname, port = web.split(":")
    conn = http.client.HTTPConnection(hostname, int(port), timeout=10)
    conn.request("GET", "/events/")
    response = conn.getresponse()
    assert response.status == 302 and "/login/" in response.getheader("Location")
    conn.close()


def test_lxc_monitor_lines_are_published_passing_states_included(bus, transactional_db, host, tmp_path):
    from containers.monitor import handle_event

    for state in ("STARTING", "RUNNING"):
        handle_event(host, str(tmp_path), "web", state)  # (no such container there: nothing to refresh)
    got = [e for e in bus(1.0) if e["kind"] == "lxc-state"]
    assert [(e["host_id"], e["name"], e["state"], e["lxc_path"]) for e in got] == [
        (host.pk, "web", "STARTING", str(tmp_path)),
        (host.pk, "web", "RUNNING", str(tmp_path)),
    ]


def test_an_lxc_monitor_line_is_relayed_as_one_escaped_row_of_its_host():
    from console.stream import data_for, messages_for

    event = {"kind": "lxc-state", "id": 3, "host_id": 3, "name": "a<b>\nc", "state": "STOPPED"}
    event.update(at="10:00:00", lxc_path="/var/lib/lxc")
    assert messages_for(event) == ["lxc-state-3"]
    row = data_for(event)
    assert "\n" not in row and "<b>" not in row and "a&lt;b&gt;" in row
    assert row.startswith('<tr data-name="a&lt;b&gt; c" data-state="STOPPED">')
    assert "changed state to [STOPPED]" in row
