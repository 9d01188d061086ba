"""The new-container form offers the chosen host's LXC paths only, follows a change of host
without reload (keeping what was typed), and a pool's "new container on this pool" link opens it
with that host and the pool's path chosen."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console.models import Host, Operation
from storage.models import Pool
from tests.browser.helpers import PASSWORD, login
from tests.hosttools import wait_for

pytestmark = [pytest.mark.browser]


def options(page) -> list[str]:
    return page.eval_on_selector_all("select[name=lxc_path] option", "els => els.map(e => e.value)")


def test_lxc_paths_follow_the_host(page, live_server, make_user):
    a = Host.objects.create(slug="rack-a", name="a", lxc_path="/var/lib/lxc", extra_lxc_paths=["/srv/pool-a"])
    b = Host.objects.create(
        slug="rack-b", name="b", lxc_path="/var/lib/lxc-b", extra_lxc_paths=["/srv/pool-b"]
    )
    pool = Pool.objects.create(host=b, name="pool-b", kind="dir", lxc_path="/srv/pool-b")
    make_user("paths-admin", role="admin", password=PASSWORD)
    login(page, live_server.url, "paths-admin")

    create = reverse("containers:create")
    page.goto(f"{live_server.url}{create}")
    assert page.input_value("select[name=host]") == "rack-a"
    assert options(page) == ["", "/srv/pool-a"]  # only rack-a's: no other host's path offered
    page.fill("input[name=name]", "typed-name")
    page.select_option("select[name=host]", "rack-b")
    wait_for(lambda: options(page) == ["", "/srv/pool-b"], 10, what="rack-b's LXC paths")
    assert page.input_value("input[name=name]") == "typed-name"
    assert "/var/lib/lxc-b (the host's default)" in page.inner_text("select[name=lxc_path]")

    # From the pool's page: host and path chosen.
    page.goto(f"{live_server.url}/storage/pools/{pool.pk}/")
    page.get_by_role("link", name="new container on this pool").click()
    page.wait_for_url(lambda url: create in url and "host=rack-b" in url)
    assert page.input_value("select[name=host]") == "rack-b"
    assert page.input_value("select[name=lxc_path]") == "/srv/pool-b"

    # Untouched name: refused, the choices kept; then one change queues it on the pool's path.
    page.fill("input[name=name]", "")
    page.get_by_role("button", name="Create").click()
    page.wait_for_load_state()
    assert "This field is required" in page.inner_text("main")
    assert page.input_value("select[name=host]") == "rack-b"
    assert page.input_value("select[name=lxc_path]") == "/srv/pool-b"
    page.fill("input[name=name]", "on-pool")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url("**/operations/*/")
    op = Operation.objects.get(kind="container.create")
    assert (op.host_id, op.params["lxc_path"], op.params["name"]) == (b.pk, "/srv/pool-b", "on-pool")
    assert a.pk != b.pk
