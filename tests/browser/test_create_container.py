"""A user logs in, creates a busybox container, watches it succeed, starts it and sees it RUNNING."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from console.models import Operation
from containers.models import Container

pytestmark = [pytest.mark.host, pytest.mark.browser]
SHOTS = Path(__file__).resolve().parents[2] / "var" / "test-logs"


def test_login_create_watch_progress_start(page, live_server, make_user, local_agent):
    make_user("browser-admin", role="admin", password="browser-password-123")
    name = f"web-{uuid.uuid4().hex[:6]}"

    page.goto(f"{live_server.url}/containers/")
    assert "/login/" in page.url
    page.fill("input[name=username]", "browser-admin")
    page.fill("input[name=password]", "browser-password-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/containers/")
    # The host may have its own libvirt domains (which every agent lists): only ours count.
    assert name not in page.inner_text("main")

    page.click("text=New container")
    page.select_option("select[name=host]", local_agent.slug)
    page.fill("input[name=name]", "bad;name")
    page.click("button:has-text('Create')")
    assert "may contain only letters" in page.inner_text(".field-error")
    assert not Operation.objects.exists()

    page.fill("input[name=name]", name)
    page.click("button:has-text('Create')")
    page.wait_for_url("**/operations/*/")
    # The card polls itself until the operation is terminal.
    card = page.locator("section.operation")
    card.locator("xpath=self::*[@data-status='succeeded']").wait_for(timeout=30000)
    assert "lxc-create -P" in card.inner_text()
    assert page.locator("progress").get_attribute("value") == "100"
    page.screenshot(path=str(SHOTS / "browser-create-succeeded.png"), full_page=True)

    page.click("text=Open the container")
    page.click("button:has-text('Start')")
    # The state panel refreshes itself from the inventory.
    page.locator("#container-state dd.state", has_text="RUNNING").wait_for(timeout=30000)
    container = Container.objects.get(name=name)
    pid = page.inner_text("#container-state dd.pid")
    assert pid == str(container.pid)
    real = subprocess.run(
        ["lxc-info", "-P", local_agent.lxc_path, "-n", name, "-p", "-H"], capture_output=True, text=True
    ).stdout.strip()
    assert pid == real
    page.screenshot(path=str(SHOTS / "browser-container-running.png"), full_page=True)

    page.click("text=Audit log")
    rows = page.inner_text("#audit-rows")
    assert "container.create" in rows and "container.start" in rows and "browser-admin" in rows
