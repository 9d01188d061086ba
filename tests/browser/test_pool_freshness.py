"""A btrfs pool's page after a snapshot and a destroy made on a container page: its subvolume list
is read again when the operation ends (it was stale until the next periodic sync, up to 30 s,
while "read 0 minutes ago" and "What lives on it" already listed the new container), and the
time of that reading is shown truly. Real btrfs on a loop file; the periodic sync is slowed to
10 minutes here, so only the operations themselves can refresh the page."""

from __future__ import annotations

import subprocess
import uuid
from datetime import datetime

import pytest

from console.models import Host, Operation
from console.operations import RequestContext
from containers import services as containers
from containers.models import Container
from storage import services
from storage.models import HostStorage, Pool
from tests.browser.helpers import PASSWORD, SHOTS, login
from tests.host.helpers import succeeded
from tests.hosttools import wait_for
from tests.storage.conftest import storage_env  # noqa: F401 (fixture)

pytestmark = [pytest.mark.host, pytest.mark.browser]
CTX = RequestContext(ip="127.0.0.1", request_id="browser-pool-test")


def ok(op: Operation, timeout: float = 120) -> Operation:
    return succeeded(op, timeout)


def _subvolumes(path: str) -> list[str]:
    out = subprocess.run(["btrfs", "subvolume", "list", path], capture_output=True, text=True, check=True)
    return [line.split(" path ", 1)[1] for line in out.stdout.splitlines()]


def test_pool_page_is_fresh_after_snapshot_and_destroy(
    page,
    live_server,
    make_user,
    start_agent,
    storage_env,  # noqa: F811
    monkeypatch,
):
    admin = make_user("pool-admin", role="admin", password=PASSWORD)
    monkeypatch.setenv("TEST_INVENTORY_SYNC_SECONDS", "600")
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    wait_for(lambda: HostStorage.objects.filter(host=host).exists(), 30, what="the storage inventory")
    loop = ok(services.create_loop_device(actor=admin, ctx=CTX, host=host, name=f"d-{uuid.uuid4().hex[:6]}",
                                          size="512M"))  # fmt: skip
    pool_name = f"p{uuid.uuid4().hex[:6]}"
    ok(services.create_pool(actor=admin, ctx=CTX, host=host, name=pool_name, kind="btrfs",
                            device=loop.result["device"]))  # fmt: skip
    pool = Pool.objects.get(host=host, name=pool_name)
    host.refresh_from_db()  # the pool's mountpoint is now one of its LXC paths
    name = f"b-{uuid.uuid4().hex[:6]}"
    ok(containers.create_container(actor=admin, ctx=CTX, host=host, name=name, lxc_path=pool.lxc_path))
    origin = Container.objects.get(host=host, name=name)

    login(page, live_server.url, "pool-admin")
    page.goto(f"{live_server.url}/storage/pools/{pool.pk}/")
    assert f"{name}/rootfs" in page.inner_text("main")

    # A snapshot from the container's page.
    page.goto(f"{live_server.url}/containers/{origin.pk}/")
    page.fill("input[name=new_name]", f"{name}-snap")
    page.click("button:has-text('Copy')")
    page.locator(
        "#action-result section.operation[data-status='succeeded'],"
        " #action-result section.operation[data-status='failed']"
    ).wait_for(timeout=120000)
    snapshot = Operation.objects.get(kind__in=["container.snapshot", "container.copy"])
    assert snapshot.status == "succeeded", snapshot.error
    assert sorted(_subvolumes(pool.lxc_path)) == sorted([f"{name}/rootfs", f"{name}-snap/rootfs"])

    page.goto(f"{live_server.url}/storage/pools/{pool.pk}/")
    page.screenshot(path=str(SHOTS / "browser-pool-after-snapshot.png"), full_page=True)
    text = page.inner_text("main")
    assert f"{name}-snap" in page.inner_text("section:has(h2:has-text('What lives on it'))")
    assert f"{name}-snap/rootfs" in text, text  # the subvolume list agrees with it, at once
    read_at = datetime.fromisoformat(page.get_attribute("time.read-at", "datetime"))
    assert read_at >= snapshot.started_at  # "read ... ago" is about a reading made after the snapshot

    # A destroy (its confirmation page) takes the subvolume off the pool page as soon as it ends.
    snap = Container.objects.get(host=host, name=f"{name}-snap")
    page.goto(f"{live_server.url}/containers/{snap.pk}/destroy/")
    page.fill("input[name=confirm]", snap.name)
    page.click("button:has-text('Destroy')")
    page.wait_for_url("**/operations/*/")
    page.locator("section.operation[data-status='succeeded']").wait_for(timeout=120000)
    page.goto(f"{live_server.url}/storage/pools/{pool.pk}/")
    assert f"{name}-snap/rootfs" not in page.inner_text("main")
    assert _subvolumes(pool.lxc_path) == [f"{name}/rootfs"]
