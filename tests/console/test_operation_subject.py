"""An operation's page links back to what it is about (pool, network, container), or says that it
no longer exists; a network's start/stop answers on the network's page."""

from __future__ import annotations

from django.urls import reverse

from console.models import Operation
from containers.models import Container
from networks.models import Network
from storage.models import Pool


def about(client, op: Operation) -> str:
    page = client.get(reverse("operation-detail", args=[op.pk])).content.decode()
    return page.split("data-subject>")[1].split("</dd>")[0] if "data-subject>" in page else ""


def test_operation_pages_link_back_to_their_subject(client, admin, host):
    pool = Pool.objects.create(host=host, name="p1", kind="dir", lxc_path="/srv/p1")
    network = Network.objects.create(host=host, name="net1", bridge="virbr9")
    container = Container.objects.create(host=host, name="web1", lxc_path="/var/lib/lxc")
    client.force_login(admin)
    cases = [
        (pool.lock_key, reverse("storage:pool-detail", args=[pool.pk]), "pool p1"),
        (network.lock_key, reverse("networks:detail", args=[network.pk]), "network net1"),
        (container.lock_key, reverse("containers:detail", args=[container.pk]), "container web1"),
    ]
    for lock_key, url, label in cases:
        op = Operation.objects.create(kind="k", host=host, target="t", lock_key=lock_key, status="succeeded")
        assert about(client, op) == f'<a href="{url}">{label}</a>'
    gone = Operation.objects.create(
        kind="k", host=host, target="t", lock_key=f"pool:{host.slug}:gone", status="failed"
    )
    assert about(client, gone) == "pool gone (no longer exists)"
    other = Operation.objects.create(kind="k", host=host, target="t", lock_key=f"host:{host.slug}:autostart")
    assert about(client, other) == ""


def test_network_start_stays_on_the_network_page_and_undefine_follows_the_operation(client, admin, host):
    network = Network.objects.create(host=host, name="net1", bridge="virbr9", active=False)
    client.force_login(admin)
    started = client.post(reverse("networks:action", args=[network.pk, "start"]), HTTP_HX_REQUEST="true")
    assert started.status_code == 202 and "HX-Redirect" not in started
    assert 'class="card operation"' in started.content.decode()
    Operation.objects.update(status="succeeded")
    undefined = client.post(reverse("networks:action", args=[network.pk, "undefine"]))
    op = Operation.objects.get(kind="libvirt.network.undefine")
    assert undefined["Location"] == reverse("operation-detail", args=[op.pk])
