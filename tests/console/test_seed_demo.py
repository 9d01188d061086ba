"""manage.py seed_demo: the demo inventory at a chosen scale, refused on a database in use."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from console.models import AuditEvent, Host, Operation
from containers.models import Container
from networks.models import Network
from storage.models import Pool


def seed(**options) -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


@pytest.mark.django_db
def test_seeds_the_counts_asked_for_and_the_pages_show_them():
    out = seed(hosts=4, containers=25, domains=5, operations=60, audit=200)
    assert "4 hosts, 25 containers, 5 domains, 60 operations, 200 audit rows" in out
    assert Host.objects.count() == 4
    assert Container.objects.filter(backend="lxc").count() == 25
    assert Container.objects.filter(backend="libvirt").count() == 5
    # Every host has its share, and some containers are snapshots of others on the same host.
    slugs = set(Container.objects.values_list("host__slug", flat=True))
    assert slugs == {"demo-01", "demo-02", "demo-03", "demo-04"}
    copies = Container.objects.exclude(origin=None).select_related("origin")
    assert copies and all(c.origin.host_id == c.host_id for c in copies)
    assert Operation.objects.count() == 60
    assert not Operation.objects.filter(status__in=("pending", "running")).exists()
    assert AuditEvent.objects.count() == 200
    assert AuditEvent.objects.exclude(operation=None).exists()
    assert Pool.objects.count() == 8 and Network.objects.count() == 8

    viewer = get_user_model().objects.get(username="demo-viewer")
    client = Client()
    client.force_login(viewer)
    assert "ct0000" in client.get("/containers/?host=demo-01").content.decode()
    # The viewer sees the first three hosts only: nothing of the fourth.
    assert "ct0000" not in client.get("/containers/?host=demo-04").content.decode()


@pytest.mark.django_db
def test_scale_divides_every_default():
    out = seed(scale=0.01)
    assert "1 hosts, 10 containers, 2 domains, 200 operations, 1,000 audit rows" in out
    assert Container.objects.count() == 12


@pytest.mark.django_db
def test_refuses_a_database_that_holds_hosts(host):
    with pytest.raises(CommandError, match="already holds 1 host"):
        seed(scale=0.01)
    assert Host.objects.count() == 1 and not Container.objects.exists()


@pytest.mark.django_db
def test_a_second_run_is_refused_and_changes_nothing():
    seed(hosts=1, containers=2, domains=0, operations=3, audit=5)
    with pytest.raises(CommandError, match="only fills an empty console"):
        seed(hosts=1, containers=2, domains=0, operations=3, audit=5)
    assert Container.objects.count() == 2 and AuditEvent.objects.count() == 5


@pytest.mark.django_db
def test_password_from_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("a-demo-password-42\n"))
    seed(hosts=1, containers=1, domains=0, operations=0, audit=0, password_stdin=True)
    assert Client().login(username="demo-admin", password="a-demo-password-42")
