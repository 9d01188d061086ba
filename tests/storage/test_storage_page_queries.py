"""The storage page reads a fixed number of queries, whatever the number of hosts, pools and loops."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from console.models import Host
from storage.models import HostStorage, LoopDevice, Pool


def seed(first: int, last: int) -> None:
    for i in range(first, last):
        host = Host.objects.create(slug=f"s{i}", name=f"s{i}")
        HostStorage.objects.create(host=host, image_dir="/var/lib/lxc-console/storage")
        LoopDevice.objects.create(host=host, device=f"/dev/loop{i % 8}", backing_file=f"/x/{i}.img")
        Pool.objects.create(host=host, name=f"p{i}", kind="dir", lxc_path=f"/srv/p{i}")


def test_queries_do_not_grow_with_hosts(client, superuser):
    client.force_login(superuser)
    seed(0, 1)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("storage:index")).status_code == 200
    seed(1, 8)
    with CaptureQueriesContext(connection) as many:
        page = client.get(reverse("storage:index")).content.decode()
    assert "p7" in page and "s7" in page
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]
