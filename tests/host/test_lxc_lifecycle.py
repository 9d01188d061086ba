"""Create, start, stop and destroy real busybox containers through the web, Celery and an agent."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
from django.urls import reverse

from console.models import AuditEvent, Operation
from containers.models import Container
from tests.host.helpers import wait_terminal

pytestmark = pytest.mark.host


def lxc_state(lxc_path: str, name: str) -> str:
    out = subprocess.run(["lxc-info", "-P", lxc_path, "-n", name, "-s", "-H"], capture_output=True, text=True)
    return out.stdout.strip()


def test_full_lifecycle_through_the_web(client, admin, local_agent):
    client.force_login(admin)
    name = f"life-{uuid.uuid4().hex[:6]}"

    response = client.post(
        reverse("containers:create"), {"host": local_agent.slug, "name": name, "template": "busybox"}
    )
    assert response.status_code == 302
    op = wait_terminal(Operation.objects.get(kind="container.create", target__endswith=name))
    assert op.status == "succeeded", op.error + op.log
    assert op.worker == f"agent-{local_agent.slug}"
    assert op.commands[0]["argv"][:1] == ["lxc-create"] and "busybox" in op.commands[0]["argv"]
    assert op.log.startswith("$ lxc-create -P ")
    assert os.path.isfile(f"{local_agent.lxc_path}/{name}/config")
    container = Container.objects.get(name=name, host__slug=local_agent.slug)
    assert container.state == "STOPPED" and lxc_state(local_agent.lxc_path, name) == "STOPPED"
    assert "lxc.apparmor.profile = unconfined" in open(f"{local_agent.lxc_path}/{name}/config").read()

    response = client.post(reverse("containers:action", args=[container.pk, "start"]))
    assert response.status_code == 302
    op = wait_terminal(Operation.objects.filter(kind="container.start").latest("pk"))
    assert op.status == "succeeded", op.error + op.log
    container.refresh_from_db()
    assert container.state == "RUNNING" == lxc_state(local_agent.lxc_path, name)
    real_pid = subprocess.run(
        ["lxc-info", "-P", local_agent.lxc_path, "-n", name, "-p", "-H"], capture_output=True, text=True
    ).stdout.strip()
    assert container.pid == int(real_pid)
    page = client.get(reverse("containers:detail", args=[container.pk])).content.decode()
    assert "RUNNING" in page and real_pid in page

    # Starting a running container is refused with a message, and nothing is queued.
    before = Operation.objects.count()
    response = client.post(reverse("containers:action", args=[container.pk, "start"]), HTTP_HX_REQUEST="true")
    assert response.status_code == 409 and b"already running" in response.content
    assert Operation.objects.count() == before

    response = client.post(reverse("containers:action", args=[container.pk, "stop"]), {"timeout": "10"})
    op = wait_terminal(Operation.objects.filter(kind="container.stop").latest("pk"))
    assert op.status == "succeeded", op.error + op.log
    container.refresh_from_db()
    assert container.state == "STOPPED" == lxc_state(local_agent.lxc_path, name)
    assert container.pid is None

    response = client.post(reverse("containers:destroy", args=[container.pk]), {"confirm": name})
    assert response.status_code == 302
    op = wait_terminal(Operation.objects.filter(kind="container.destroy").latest("pk"))
    assert op.status == "succeeded", op.error + op.log
    assert not os.path.exists(f"{local_agent.lxc_path}/{name}")
    assert not Container.objects.filter(name=name).exists()

    actions = list(AuditEvent.objects.order_by("pk").values_list("action", "result"))
    assert actions == [
        ("container.create", "accepted"),
        ("container.start", "accepted"),
        ("container.start", "refused"),
        ("container.stop", "accepted"),
        ("container.destroy", "accepted"),
    ]
    assert all(e.actor_id == admin.pk and e.request_id for e in AuditEvent.objects.all())
    audit_page = client.get(reverse("audit-list")).content.decode()
    assert audit_page.count(name) >= 5


def test_destroy_running_with_stop_first(client, admin, local_agent):
    client.force_login(admin)
    name = f"sd-{uuid.uuid4().hex[:6]}"
    client.post(reverse("containers:create"), {"host": local_agent.slug, "name": name, "template": "busybox"})
    wait_terminal(Operation.objects.get(kind="container.create"))
    container = Container.objects.get(name=name)
    client.post(reverse("containers:action", args=[container.pk, "start"]))
    assert wait_terminal(Operation.objects.get(kind="container.start")).status == "succeeded"
    container.refresh_from_db()

    response = client.post(reverse("containers:destroy", args=[container.pk]), {"confirm": name})
    assert response.status_code == 409
    assert "stop it first" in response.content.decode()
    assert lxc_state(local_agent.lxc_path, name) == "RUNNING"

    client.post(reverse("containers:destroy", args=[container.pk]), {"confirm": name, "stop_first": "on"})
    op = wait_terminal(Operation.objects.get(kind="container.destroy"))
    assert op.status == "succeeded", op.error + op.log
    assert [c["argv"][0] for c in op.commands] == ["lxc-stop", "lxc-destroy"]
    assert not os.path.exists(f"{local_agent.lxc_path}/{name}")


def test_failed_start_shows_lxc_cause_and_releases_the_lock(client, admin, local_agent):
    client.force_login(admin)
    name = f"bad-{uuid.uuid4().hex[:6]}"
    client.post(reverse("containers:create"), {"host": local_agent.slug, "name": name, "template": "busybox"})
    wait_terminal(Operation.objects.get(kind="container.create"))
    config = f"{local_agent.lxc_path}/{name}/config"
    text = open(config).read().replace("lxc.net.0.link = lxcbr0", "lxc.net.0.link = nosuchbr0")
    open(config, "w").write(text)
    container = Container.objects.get(name=name)

    client.post(reverse("containers:action", args=[container.pk, "start"]))
    op = wait_terminal(Operation.objects.get(kind="container.start"))
    assert op.status == "failed"
    assert 'bridge "nosuchbr0"' in op.error or "nosuchbr0" in op.error
    container.refresh_from_db()
    assert container.state == "STOPPED"
    # The lock is released: a new operation on the same container is accepted.
    response = client.post(reverse("containers:destroy", args=[container.pk]), {"confirm": name})
    assert response.status_code == 302
    assert wait_terminal(Operation.objects.get(kind="container.destroy")).status == "succeeded"


def test_inventory_picks_up_containers_made_outside_the_console(local_agent):
    name = f"ext-{uuid.uuid4().hex[:6]}"
    subprocess.run(
        ["lxc-create", "-P", local_agent.lxc_path, "-n", name, "-t", "busybox"],
        check=True,
        capture_output=True,
    )
    from tests.hosttools import wait_for

    container = wait_for(
        lambda: Container.objects.filter(name=name, host__slug=local_agent.slug).first(),
        15,
        what="periodic sync",
    )
    assert container.state == "STOPPED" and container.store == "dir"
    subprocess.run(["lxc-destroy", "-P", local_agent.lxc_path, "-n", name], check=True, capture_output=True)
    wait_for(lambda: not Container.objects.filter(name=name).exists(), 15, what="sync to drop the row")


def test_create_from_a_rootfs_tarball(admin, local_agent, settings, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    settings.ROOTFS_TARBALL_DIRS = [str(images)]
    # A real root filesystem: the busybox template's, made in a scratch LXC path and packed.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    subprocess.run(
        ["lxc-create", "-P", str(scratch), "-n", "src", "-t", "busybox"], check=True, capture_output=True
    )
    tarball = images / "busybox-rootfs.tar.gz"
    subprocess.run(["tar", "-czf", str(tarball), "-C", str(scratch / "src" / "rootfs"), "."], check=True)
    subprocess.run(["lxc-destroy", "-P", str(scratch), "-n", "src"], check=True, capture_output=True)

    from console.models import Host
    from console.operations import RequestContext
    from containers import services

    host = Host.objects.get(slug=local_agent.slug)
    name = f"tar-{uuid.uuid4().hex[:6]}"
    op = wait_terminal(
        services.create_container(
            actor=admin, ctx=RequestContext(), host=host, name=name, template="tarball", tarball=str(tarball)
        )
    )
    assert op.status == "succeeded", op.error + op.log
    assert [c["argv"][0] for c in op.commands] == ["lxc-create", "tar"]
    config = open(f"{local_agent.lxc_path}/{name}/config").read()
    assert f"lxc.rootfs.path = dir:{local_agent.lxc_path}/{name}/rootfs" in config
    assert "lxc.include = /usr/share/lxc/config/common.conf" in config
    assert os.path.exists(f"{local_agent.lxc_path}/{name}/rootfs/bin/busybox")
    container = Container.objects.get(name=name)
    start = wait_terminal(services.start_container(actor=admin, ctx=RequestContext(), container=container))
    assert start.status == "succeeded", start.error + start.log
    assert lxc_state(local_agent.lxc_path, name) == "RUNNING"

    # A tarball that does not exist on the host fails cleanly and leaves nothing.
    missing = wait_terminal(
        services.create_container(
            actor=admin,
            ctx=RequestContext(),
            host=host,
            name=f"{name}-x",
            template="tarball",
            tarball=str(images / "missing.tar"),
        )
    )
    assert missing.status == "failed" and "does not exist" in missing.error
    assert not os.path.exists(f"{local_agent.lxc_path}/{name}-x")


def test_a_failed_template_leaves_no_half_made_container(tmp_path):
    from console.runner import CommandError, Runner
    from containers.drivers.lxc import LxcDriver

    driver = LxcDriver(Runner(None), str(tmp_path))
    with pytest.raises(CommandError, match="lxc-create could not create 'half'"):
        driver.create("half", "busybox", ["--no-such-option"])
    assert not (tmp_path / "half").exists()
