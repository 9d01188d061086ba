"""The Autostart page's "Start these now", and the agent's boot autostart, on real LXC paths:
an LXC path without containers is skipped (lxc-autostart exits 1 there without a word), and a
container that does not start fails the operation with LXC's own words from its log."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from console.models import Host, Operation
from containers.models import Container
from tests.browser.helpers import PASSWORD, SHOTS, busybox, login
from tests.hosttools import wait_for

pytestmark = [pytest.mark.host, pytest.mark.browser]


def _state(lxc_path: str, name: str) -> str:
    return subprocess.run(
        ["lxc-info", "-P", lxc_path, "-n", name, "-s", "-H"], capture_output=True, text=True
    ).stdout.strip()


def test_autostart_skips_empty_paths_and_fails_with_lxcs_words(
    page, live_server, make_user, start_agent, tmp_path
):
    make_user("auto-admin", role="admin", password=PASSWORD)
    agent = start_agent()
    empty = tmp_path / "empty-lxc-path"
    empty.mkdir()
    Host.objects.filter(slug=agent.slug).update(extra_lxc_paths=[str(empty)])
    tag = uuid.uuid4().hex[:4]
    good, bad = f"as-good-{tag}", f"as-bad-{tag}"
    busybox(agent.lxc_path, good, "lxc.start.auto = 1")
    busybox(agent.lxc_path, bad, "lxc.start.auto = 1")
    config = f"{agent.lxc_path}/{bad}/config"
    with open(config) as fh:
        text = fh.read()
    with open(config, "w") as fh:
        fh.write(text.replace("lxc.net.0.link = lxcbr0", f"lxc.net.0.link = nobr{tag}"))
    wait_for(
        lambda: Container.objects.filter(host__slug=agent.slug, autostart=True).count() == 2,
        20,
        what="both containers in the inventory",
    )

    login(page, live_server.url, "auto-admin")
    page.goto(f"{live_server.url}/containers/autostart/{agent.slug}/")
    assert page.locator(f"tr[data-name='{good}']").count() == 1
    page.click("button:has-text('Start these now')")
    page.wait_for_url("**/operations/*/")
    card = page.locator("section.operation")
    card.locator("xpath=self::*[@data-status!='pending' and @data-status!='running']").wait_for(timeout=60000)
    page.screenshot(path=str(SHOTS / "browser-autostart-failed.png"), full_page=True)
    op = Operation.objects.get(kind="host.autostart")
    assert op.status == "failed"
    error = page.inner_text("section.operation .alert.error")
    # LXC's own words (from the log lxc-start writes), not a bare exit status.
    assert f"nobr{tag}" in error and "doesn't exist" in error, error
    transcript = card.inner_text()
    assert f"{empty}: no containers in this LXC path" in transcript
    # The good one started all the same; the bad one did not.
    assert _state(agent.lxc_path, good) == "RUNNING"
    assert _state(agent.lxc_path, bad) == "STOPPED"


def test_boot_autostart_with_an_empty_lxc_path_succeeds(admin, start_agent, monkeypatch, tmp_path):
    """What failed at agent start with "lxc-autostart failed: exit status 1" and nothing else: the
    host's default LXC path had no container."""
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    name = f"boot-{uuid.uuid4().hex[:4]}"
    pool_path = tmp_path / "pool-path"
    pool_path.mkdir()
    busybox(str(pool_path), name, "lxc.start.auto = 1", "lxc.group = onboot")
    agent.stop()
    Host.objects.filter(pk=host.pk).update(
        autostart_boot_id="an-earlier-boot", extra_lxc_paths=[str(pool_path)]
    )
    monkeypatch.setenv("TEST_AUTOSTART_BOOT_WINDOW", str(10**9))  # "the host booted just now"
    try:
        start_agent(slug=agent.slug, lxc_path=agent.lxc_path)  # its own path is empty
        op = wait_for(
            lambda: (
                Operation.objects.filter(kind="host.autostart")
                .exclude(status__in=["pending", "running"])
                .first()
            ),
            60,
            what="boot autostart",
        )
        assert op.status == "succeeded", (op.error, op.log)
        assert op.result["started"] == [name]
        assert _state(str(pool_path), name) == "RUNNING"
    finally:
        subprocess.run(["lxc-stop", "-P", str(pool_path), "-n", name, "-k"], capture_output=True, timeout=60)
        subprocess.run(
            ["lxc-destroy", "-P", str(pool_path), "-n", name, "-f"], capture_output=True, timeout=60
        )
