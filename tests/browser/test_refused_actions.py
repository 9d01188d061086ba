"""An action the page already knows will be refused is shown disabled with the reason, not offered
and refused after the click; a refusal that still happens (a page opened before the state changed)
is said once. Seen on a container with a snapshot and on a pool a container lives on."""

from __future__ import annotations

import pytest

from console.models import Operation
from containers.models import Container
from storage.models import Pool
from tests.browser.helpers import PASSWORD, login

pytestmark = [pytest.mark.browser]


def test_destroy_blocked_by_a_snapshot_is_disabled_with_the_reason(page, live_server, make_user, host):
    make_user("refuse-admin", role="admin", password=PASSWORD)
    base = Container.objects.create(host=host, name="base1", state="STOPPED", lxc_path=host.lxc_path)
    login(page, live_server.url, "refuse-admin")

    # The destroy page opened while nothing depended on it...
    page.goto(f"{live_server.url}/containers/{base.pk}/destroy/")
    Container.objects.create(
        host=host, name="base1-snap", lxc_path=host.lxc_path, origin=base, origin_kind="snapshot"
    )
    # ...posts after a snapshot was taken: refused, and the reason said once.
    page.fill("input[name=confirm]", "base1")
    page.get_by_role("button", name="Destroy").click()
    page.wait_for_load_state()
    assert page.locator("main").inner_text().count("base1-snap") == 1
    assert page.get_by_role("button", name="Destroy").is_disabled()
    assert not Operation.objects.exists()

    # The container's page does not offer it: a disabled button and the reason beside it.
    page.goto(f"{live_server.url}/containers/{base.pk}/")
    button = page.locator("#container-state").get_by_role("button", name="Destroy…")
    assert button.is_disabled()
    assert page.locator("#container-state a", has_text="Destroy…").count() == 0
    reason = "Destroy is not possible: these snapshots depend on it: base1-snap"
    assert reason in page.inner_text("#container-state")


def test_pool_with_a_container_on_it_is_not_offered_for_destroy(page, live_server, make_user, host):
    make_user("refuse-pool-admin", role="admin", password=PASSWORD)
    pool = Pool.objects.create(host=host, name="fast", kind="btrfs", source="/dev/loop9", lxc_path="/srv/f")
    login(page, live_server.url, "refuse-pool-admin")
    page.goto(f"{live_server.url}/storage/pools/{pool.pk}/destroy/")
    Container.objects.create(host=host, name="tenant", state="STOPPED", lxc_path="/srv/f")
    page.fill("input[name=confirm]", "fast")
    page.get_by_role("button", name="Destroy").click()
    page.wait_for_load_state()
    assert page.locator("main").inner_text().count("destroy the container tenant") == 1
    assert page.get_by_role("button", name="Destroy").is_disabled()

    page.goto(f"{live_server.url}/storage/pools/{pool.pk}/")
    assert page.get_by_role("button", name="Destroy…").is_disabled()
    assert "Destroy is not possible while something lives on the pool" in page.inner_text("main")
    assert not Operation.objects.exists()


def test_loop_device_a_pool_lives_on_is_not_offered_for_detach(page, live_server, make_user, host):
    from storage.models import LoopDevice

    make_user("refuse-loop-admin", role="admin", password=PASSWORD)
    LoopDevice.objects.create(host=host, device="/dev/loop9", backing_file="/srv/f.img", fstype="btrfs")
    free = LoopDevice.objects.create(host=host, device="/dev/loop8", backing_file="/srv/g.img")
    Pool.objects.create(host=host, name="fast", kind="btrfs", source="/dev/loop9", lxc_path="/srv/f")
    login(page, live_server.url, "refuse-loop-admin")
    page.goto(f"{live_server.url}/storage/")
    held_row = page.locator("tr", has_text="/srv/f.img")
    assert held_row.get_by_role("button", name="Detach…").is_disabled()
    assert held_row.locator("a", has_text="Detach…").count() == 0
    assert "Detach is not possible while these depend on it: pool fast" in held_row.inner_text()
    free_row = page.locator("tr", has_text="/srv/g.img")
    free_row.get_by_role("link", name="Detach…").click()
    page.wait_for_url(f"**/storage/loop/{free.pk}/detach/")
    assert not Operation.objects.exists()
