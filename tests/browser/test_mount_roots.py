"""Allowed bind-mount roots on the host page, checked by the host's agent: a directory that does
not exist there is refused (nothing saved), a system directory needs the admin to tick that they
mean it and stays marked with a warning, a real directory is saved. What was typed stays."""

from __future__ import annotations

import tempfile

import pytest

from console.models import Host
from tests.browser.helpers import PASSWORD, login
from tests.hosttools import wait_for

pytestmark = [pytest.mark.host, pytest.mark.browser]


def test_mount_roots_are_checked_on_the_host(page, live_server, make_user, local_agent):
    make_user("roots-root", role=None, superuser=True, password=PASSWORD)
    host = Host.objects.get(slug=local_agent.slug)
    login(page, live_server.url, "roots-root")
    page.goto(f"{live_server.url}/hosts/{host.slug}/")
    box = page.get_by_label("Allowed roots, one directory a line")
    result = page.locator("#mount-roots-result")

    with tempfile.TemporaryDirectory(prefix="console-roots-", dir="/var/tmp") as real:
        missing = f"{real}/not-there"
        box.fill(f"{real}\n{missing}")
        page.get_by_role("button", name="Save roots").click()
        result.locator("section.operation[data-status=failed]").wait_for(timeout=30000)
        assert f"{missing} does not exist" in result.inner_text()
        host.refresh_from_db()
        assert host.mount_roots == []
        assert box.input_value() == f"{real}\n{missing}"

        box.fill(f"{real}\n/etc")
        page.get_by_role("button", name="Save roots").click()
        refusal = result.locator(".alert.error", has_text="/etc: a system directory of the host")
        refusal.wait_for(timeout=10000)
        assert result.locator("section.operation").count() == 0  # nothing queued
        assert box.input_value() == f"{real}\n/etc"
        host.refresh_from_db()
        assert host.mount_roots == []

        page.get_by_label("Allow system directories").check()
        page.get_by_role("button", name="Save roots").click()
        result.locator("section.operation[data-status=succeeded]").wait_for(timeout=30000)
        wait_for(lambda: Host.objects.get(pk=host.pk).mount_roots == sorted(["/etc", real]), 5, what="roots")
        page.reload()
        assert "/etc: a system directory of the host" in page.inner_text("[role=status].alert")
