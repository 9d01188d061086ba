"""The limits page of a real running busybox container: a memory limit saved as ``256M`` and read
back live as ``268435456`` reads "256 MiB" in both columns, and the saved limit can be removed by a
click (the config loses its line; the live value stays until the next start)."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from console.models import Host, Operation
from containers.models import Container
from tests.browser.helpers import PASSWORD, busybox, login
from tests.host.helpers import wait_terminal
from tests.hosttools import wait_for

pytestmark = [pytest.mark.host, pytest.mark.browser]
KEY = "memory.limit_in_bytes"


def cells(page) -> tuple[str, str]:
    row = page.locator(f"tr[data-key='{KEY}']")
    return row.locator("td.saved").inner_text().strip(), row.locator("td.live").inner_text().strip()


def test_saved_and_live_limits_read_alike_and_the_saved_one_can_be_removed(
    page, live_server, make_user, local_agent
):
    make_user("limits-admin", role="admin", password=PASSWORD)
    host = Host.objects.get(slug=local_agent.slug)
    name = f"lim-{uuid.uuid4().hex[:6]}"
    busybox(local_agent.lxc_path, name, f"lxc.cgroup.{KEY} = 256M")
    config = f"{local_agent.lxc_path}/{name}/config"
    lxc = ["-P", local_agent.lxc_path, "-n", name]
    try:
        subprocess.run(["lxc-start", *lxc], check=True, capture_output=True, timeout=60)
        c = wait_for(
            lambda: (
                Container.objects.filter(host=host, name=name, cgroup_live__has_key=KEY, state="RUNNING")
                .exclude(**{f"cgroup_live__{KEY}": None})
                .first()
            ),
            30,
            what="the live limit in the inventory",
        )
        login(page, live_server.url, "limits-admin")
        page.goto(f"{live_server.url}/containers/{c.pk}/limits/")
        assert cells(page) == ("256 MiB", "256 MiB")
        assert page.locator(f"tr[data-key='{KEY}'] .badge", has_text="differs").count() == 0

        page.once("dialog", lambda d: d.accept())
        page.get_by_role("button", name=f"Remove the saved {KEY}").click()
        page.wait_for_url("**/operations/*/")
        op = wait_terminal(Operation.objects.get(kind="container.limit.remove"))
        assert op.status == "succeeded", op.error + op.log
        with open(config) as fh:
            assert f"lxc.cgroup.{KEY}" not in fh.read()
        page.goto(f"{live_server.url}/containers/{c.pk}/limits/")
        assert cells(page) == ("—", "256 MiB")  # the running container keeps it until restarted
        assert page.locator("button", has_text="Remove saved").count() == 0
    finally:
        subprocess.run(["lxc-stop", *lxc, "-k"], capture_output=True, timeout=60)
        subprocess.run(["lxc-destroy", *lxc, "-f"], capture_output=True, timeout=60)
