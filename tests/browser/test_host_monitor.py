"""The host's monitor page shows what lxc-monitor prints as it happens, passing states included,
for containers started and stopped from a shell (not by the console): served by uvicorn (the event
stream needs ASGI) with a real agent, without reload."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from console.models import Host
from tests.browser.helpers import PASSWORD, busybox, login

pytestmark = [pytest.mark.host, pytest.mark.browser]

STREAM_OPEN = """() => {
    const s = document.body["htmx-internal-data"].sseEventSource;
    return !!s && s.readyState === 1;
}"""


def test_host_monitor_shows_state_changes_as_they_arrive(page, web, make_user, start_agent):
    make_user("monitor-viewer", role="view", password=PASSWORD)
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    name = f"mon-{uuid.uuid4().hex[:6]}"
    busybox(agent.lxc_path, name)
    lxc = ["-P", agent.lxc_path, "-n", name]
    base = f"http://{web}"
    login(page, base, "monitor-viewer")
    page.goto(f"{base}/hosts/{host.slug}/")
    page.get_by_role("link", name="State changes, live (lxc-monitor) →").click()
    page.wait_for_url(f"**/hosts/{host.slug}/monitor/")
    page.evaluate("() => { window.__loaded = 'once'; }")  # gone if the page ever reloads
    page.wait_for_function(STREAM_OPEN, timeout=10000)
    assert page.get_by_text("Waiting for state changes").is_visible()
    rows = page.locator("#lxc-monitor tbody tr")

    def states() -> list[str]:
        return [r.get_attribute("data-state") for r in rows.all() if r.get_attribute("data-name") == name]

    try:
        subprocess.run(["lxc-start", *lxc], check=True, capture_output=True, timeout=60)
        rows.filter(has_text=f"'{name}' changed state to [RUNNING]").wait_for(timeout=10000)
        assert states()[:2] == ["RUNNING", "STARTING"]  # newest first, the passing state too
        assert not page.get_by_text("Waiting for state changes").is_visible()
        subprocess.run(["lxc-stop", *lxc, "-k"], check=True, capture_output=True, timeout=60)
        rows.filter(has_text=f"'{name}' changed state to [STOPPED]").wait_for(timeout=10000)
        assert states()[0] == "STOPPED"
        assert agent.lxc_path in rows.first.inner_text()
        assert page.evaluate("() => window.__loaded") == "once"
    finally:
        subprocess.run(["lxc-stop", *lxc, "-k"], capture_output=True, timeout=60)
        subprocess.run(["lxc-destroy", *lxc, "-f"], capture_output=True, timeout=60)
