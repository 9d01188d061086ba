"""With the event stream down, a page still follows what changes: its panels' slow polls (every
10-15 s) fetch them. Two ways the stream goes down, in Chromium on uvicorn:

- the web cannot reach Redis's pub/sub (its REDIS_URL names a port nobody listens on): the stream
  answers "no events now" and ends, the browser retries it later;
- the stream's requests fail in the network (the browser's every /events/ request is aborted).

Then a container's state changes in the inventory (as its agent writes it) and the page's state
panel and the container list's rows show the new state, fetched by their poll, not by an event.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from console import events
from console.models import Host
from containers.models import Container
from tests.browser.helpers import PASSWORD, login
from tests.database import session_database_url
from tests.hosttools import free_port, stop_process, wait_for

pytestmark = pytest.mark.browser

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WATCH = """() => {
    window.__polls = [];
    document.body.addEventListener("htmx:beforeRequest", e => {
        const t = e.detail.requestConfig.triggeringEvent;
        window.__polls.push([e.detail.elt.id, t ? t.type : "poll"]);
    });
}"""


def _dead_port() -> int:
    """A loopback port nobody listens on (bound and closed: refused at once)."""
    port = free_port()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    return port


@pytest.fixture
def web_with_redis(transactional_db, agent_log_dir, request):
    """uvicorn on the test database whose Redis is the one the test names (param: a URL or None
    for the session's own)."""
    redis_url = request.getfixturevalue("redis_url") if request.param == "live" else request.param
    port = free_port()
    log = open(agent_log_dir / "uvicorn-fallback.log", "w")
    env = {
        **os.environ,
        "DATABASE_URL": session_database_url(),
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "console.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, 20, what="uvicorn")
    yield f"http://127.0.0.1:{port}"
    stop_process(proc)
    log.close()


@pytest.mark.parametrize(
    "web_with_redis, abort_stream",
    [(f"redis://127.0.0.1:{_dead_port()}/0", False), ("live", True)],
    ids=["redis-unreachable", "stream-requests-fail"],
    indirect=["web_with_redis"],
)
def test_the_page_and_the_list_follow_a_change_by_their_slow_poll(
    browser, page, web_with_redis, abort_stream, make_user, redis_url, settings
):
    # This process publishes the change as an agent does, on the session's Redis: a working
    # stream of the web would relay it.
    settings.REDIS_URL = redis_url
    events.reset()
    make_user("poll-admin", role="admin", password=PASSWORD)
    host = Host.objects.create(slug="pollhost", name="poll host", last_heartbeat=timezone.now())
    container = Container.objects.create(
        host=host,
        name="polled",
        lxc_path=host.lxc_path,
        state="STOPPED",
        config_text="lxc.uts.name = polled\n",
    )
    aborted: list[str] = []
    if abort_stream:

        def abort(route) -> None:
            aborted.append(route.request.url)
            route.abort()

        page.context.route("**/events/", abort)
    base = web_with_redis
    login(page, base, "poll-admin")
    page.goto(f"{base}/containers/{container.pk}/")
    page.evaluate("() => { window.__loaded = 'once'; }")
    page.evaluate(WATCH)
    listing = page.context.new_page()
    listing.goto(f"{base}/containers/")
    listing.evaluate(WATCH)
    row = listing.locator("#container-rows tr", has_text="polled")
    assert "STOPPED" in row.inner_text()
    page.locator("#container-state dd.state", has_text="STOPPED").wait_for(timeout=5000)

    # The agent writes the new state (and its heartbeat, so the host stays online); the save
    # publishes it (containers.signals).
    Host.objects.filter(pk=host.pk).update(last_heartbeat=timezone.now() + timedelta(seconds=30))
    container.state, container.pid = "RUNNING", 4242
    container.save()

    # Within one poll period (15 s) and some slack; never through the stream.
    page.locator("#container-state dd.state", has_text="RUNNING").wait_for(timeout=25000)
    row.filter(has_text="RUNNING").wait_for(timeout=25000)
    for tab in (page, listing):
        polls = tab.evaluate("() => window.__polls")
        assert polls and all(kind == "poll" for _, kind in polls), polls
    assert ["container-state", "poll"] in page.evaluate("() => window.__polls")
    assert ["container-rows", "poll"] in listing.evaluate("() => window.__polls")
    assert page.evaluate("() => window.__loaded") == "once"  # refreshed in place, not reloaded
    if abort_stream:
        assert aborted, "the page never asked for its event stream"
    events.reset()
