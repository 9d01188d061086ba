"""A host whose agent sends no heartbeat: its containers' state is unknown, on every page that shows
a state, and the pages learn it with the rows (no query per row)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from console.models import Host
from containers.models import Container

OFFLINE = "state unknown (host offline)"


def make_host(slug: str, *, online: bool) -> Host:
    beat = timezone.now() - (timedelta(seconds=1) if online else timedelta(minutes=10))
    return Host.objects.create(slug=slug, name=slug, lxc_path="/var/lib/lxc", last_heartbeat=beat)


def states(body: str) -> dict[str, str]:
    """Each listed container's name and the text of its state badge."""
    badge = r'<tr data-name="([^"]+)">.*?<span class="badge state-[^"]*"[^>]*>([^<]+)</span>'
    return dict(re.findall(badge, body, re.S))


@pytest.fixture
def two_hosts(db):
    return make_host("up1", online=True), make_host("down1", online=False)


def test_the_list_shows_state_unknown_for_the_containers_of_an_offline_host(client, viewer, two_hosts):
    up, down = two_hosts
    Container.objects.create(host=up, name="a-up", state="RUNNING")
    Container.objects.create(host=down, name="b-down", state="RUNNING")
    Container.objects.create(host=down, name="c-down", state="STOPPED")
    client.force_login(viewer)
    body = client.get(reverse("containers:list")).content.decode()
    assert states(body) == {"a-up": "RUNNING", "b-down": OFFLINE, "c-down": OFFLINE}
    # The host comes back (a heartbeat): its last state is shown again.
    Host.objects.filter(pk=down.pk).update(last_heartbeat=timezone.now())
    body = client.get(reverse("containers:list")).content.decode()
    assert states(body) == {"a-up": "RUNNING", "b-down": "RUNNING", "c-down": "STOPPED"}


def test_the_list_reads_every_hosts_state_with_its_rows(client, viewer, settings):
    """The same number of queries for 3 containers on 2 hosts as for 40 on 8, half of them offline."""
    settings.PAGE_SIZE = 50
    client.force_login(viewer)

    def add(hosts: int, per_host: int) -> None:
        for h in range(hosts):
            host = Host.objects.filter(slug=f"h{h}").first() or make_host(f"h{h}", online=h % 2 == 0)
            for i in range(per_host):
                Container.objects.get_or_create(host=host, name=f"c{h}-{i}", defaults={"state": "RUNNING"})

    def count() -> tuple[int, dict[str, str]]:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(reverse("containers:list"))
        return len(ctx.captured_queries), states(response.content.decode())

    add(2, 2)
    few, shown = count()
    assert len(shown) == 4 and sorted(shown.values()) == ["RUNNING", "RUNNING", OFFLINE, OFFLINE]
    add(8, 5)
    many, shown = count()
    assert len(shown) == 40 and list(shown.values()).count(OFFLINE) == 20
    assert many == few


def test_the_container_page_its_clone_tree_and_the_autostart_page_say_so(client, operator, two_hosts):
    up, down = two_hosts
    base = Container.objects.create(host=down, name="base", state="RUNNING", autostart=True)
    copies = [
        Container.objects.create(host=down, name=f"copy{i}", state="STOPPED", origin=base, origin_kind="copy")
        for i in range(6)
    ]
    client.force_login(operator)

    def detail_queries(pk: int) -> tuple[int, str]:
        with CaptureQueriesContext(connection) as ctx:
            body = client.get(reverse("containers:detail", args=[pk])).content.decode()
        return len(ctx.captured_queries), body

    few, body = detail_queries(copies[0].pk)
    assert f'<dd class="state">{OFFLINE}</dd>' in body
    assert "Host down1 is offline" in body and "<dt>Last reported</dt><dd>RUNNING</dd>" not in body
    many, body = detail_queries(base.pk)
    assert "<dt>Last reported</dt><dd>RUNNING</dd>" in body
    # The clone tree's six copies, each with its badge, read in the same queries as one copy's page.
    tree = body[body.index("Clone graph") :]
    assert tree.count(f">{OFFLINE}</span>") == 6, tree
    assert many == few

    body = client.get(reverse("containers:autostart", args=[down.slug]), {"all": "1"}).content.decode()
    row = re.search(r'<tr data-name="base">.*?</tr>', body, re.S)
    assert row and OFFLINE in row.group(0)

    # On an online host the page shows the state itself.
    live = Container.objects.create(host=up, name="live", state="RUNNING")
    body = client.get(reverse("containers:detail", args=[live.pk])).content.decode()
    assert '<dd class="state">RUNNING</dd>' in body and OFFLINE not in body
