"""The container list (search, filters, paging, query count) and a container's page."""

from __future__ import annotations

import re

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse


def rows(body):
    """Names of the containers listed in the table, in order."""
    return re.findall(r'<tr data-name="([^"]+)">', body)


def test_list_search_filters_rows(client, viewer, make_container):
    make_container("alpha-web")
    make_container("beta-db", ips=["10.0.3.48"])
    make_container("gamma-cache")
    client.force_login(viewer)
    assert rows(client.get(reverse("containers:list")).content.decode()) == [
        "alpha-web",
        "beta-db",
        "gamma-cache",
    ]
    assert rows(client.get(reverse("containers:list"), {"q": "beta"}).content.decode()) == ["beta-db"]
    assert rows(client.get(reverse("containers:list"), {"q": "10.0.3.48"}).content.decode()) == ["beta-db"]
    body = client.get(reverse("containers:list"), {"q": "nothing-like-this"}).content.decode()
    assert rows(body) == [] and "No container matches these filters." in body


def test_list_filters_by_state(client, viewer, make_container):
    make_container("up", state="RUNNING")
    make_container("down", state="STOPPED")
    client.force_login(viewer)
    assert rows(client.get(reverse("containers:list"), {"state": "RUNNING"}).content.decode()) == ["up"]


def test_list_htmx_refresh_answers_only_the_rows(client, viewer, make_container):
    make_container("alpha")
    client.force_login(viewer)
    response = client.get(reverse("containers:list"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="container-rows")
    body = response.content.decode()
    assert rows(body) == ["alpha"]
    assert "<html" not in body and "<form" not in body


def test_list_paginates(client, viewer, make_container, settings):
    settings.PAGE_SIZE = 2
    for name in ["c1", "c2", "c3", "c4", "c5"]:
        make_container(name)
    client.force_login(viewer)
    body = client.get(reverse("containers:list")).content.decode()
    assert "Page 1 of 3" in body
    assert rows(body) == ["c1", "c2"]
    body = client.get(reverse("containers:list"), {"page": 3}).content.decode()
    assert "Page 3 of 3" in body
    assert rows(body) == ["c5"]


def test_list_pagination_links_keep_the_search(client, viewer, make_container, settings):
    settings.PAGE_SIZE = 1
    for name in ["web1", "web2", "db1"]:
        make_container(name)
    client.force_login(viewer)
    body = client.get(reverse("containers:list"), {"q": "web"}).content.decode()
    assert "Page 1 of 2" in body
    assert 'href="?q=web&page=2"' in body


def test_list_runs_a_constant_number_of_queries(client, viewer, make_container, settings):
    settings.PAGE_SIZE = 50
    client.force_login(viewer)
    base = make_container("base")

    def count():
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(reverse("containers:list"))
        return len(ctx.captured_queries), rows(response.content.decode())

    make_container("copy-0", origin=base, origin_kind="copy")
    few, listed = count()
    assert len(listed) == 2
    for i in range(1, 29):
        make_container(f"copy-{i}", origin=base, origin_kind="copy", ips=["10.0.3.1"], groups=["g"])
    many, listed = count()
    assert len(listed) == 30
    assert many == few


def test_detail_shows_the_container_and_its_origin(client, viewer, make_container):
    base = make_container("base")
    copy = make_container(
        "copy", state="RUNNING", pid=4242, ips=["10.0.3.9"], origin=base, origin_kind="copy"
    )
    client.force_login(viewer)
    body = client.get(reverse("containers:detail", args=[copy.pk])).content.decode()
    assert "4242" in body and "10.0.3.9" in body
    assert f'href="{reverse("containers:detail", args=[base.pk])}"' in body
    assert reverse("containers:destroy", args=[copy.pk]) not in body  # viewers get no destroy button


def test_detail_names_the_volume_or_dataset_from_the_pool_reading(client, viewer, make_container):
    """An LVM or ZFS container's page shows its own volume/dataset as the agent last read the pool
    (outputs recorded in the VM tier: tests/storage/fixtures/vm_*)."""
    import json

    from storage.drivers.lvm import parse_lvs_json
    from storage.models import Pool
    from tests.storage.conftest import fixture_text

    snap = make_container("c1snap", rootfs="lvm:/dev/lxc/c1snap", store="lvm")
    lvs = [vars(lv) for lv in parse_lvs_json(fixture_text("vm_lvs_snapshot.json"))]
    Pool.objects.create(
        host=snap.host,
        name="vg",
        kind="lvm",
        vg_name="lxc",
        lxc_path=snap.lxc_path,
        details={"lvs": json.loads(json.dumps(lvs))},
    )
    client.force_login(viewer)
    body = client.get(reverse("containers:detail", args=[snap.pk])).content.decode()
    assert "logical volume lxc/c1snap, 100.0\xa0MB, snapshot of c1 (0.01% used)" in body, body
    assert 'on pool <a href="/storage/pools/' in body
