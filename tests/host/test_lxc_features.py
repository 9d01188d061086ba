"""Freeze, snapshots and copies, attach, config editing and lxc-monitor events on real containers."""

from __future__ import annotations

import html
import os
import re
import subprocess
import time
import uuid

import pytest

from console.errors import Conflict, InvalidInput
from console.models import AuditEvent, Operation
from console.operations import RequestContext
from containers import services
from containers.drivers import cgroupfs
from containers.lxc_config import config_hash
from containers.models import Container
from tests.host.helpers import wait_terminal
from tests.hosttools import wait_for

pytestmark = pytest.mark.host
CTX = RequestContext(ip="127.0.0.1", request_id="feature-test")


def lxc(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def make_container(admin, local_agent):
    def make(*, start: bool = False) -> Container:
        name = f"f-{uuid.uuid4().hex[:6]}"
        op = wait_terminal(
            services.create_container(actor=admin, ctx=CTX, host=local_agent_host(local_agent), name=name)
        )
        assert op.status == "succeeded", op.error + op.log
        container = Container.objects.get(pk=op.result["container_id"])
        if start:
            op = wait_terminal(services.start_container(actor=admin, ctx=CTX, container=container))
            assert op.status == "succeeded", op.error + op.log
            container.refresh_from_db()
        return container

    return make


def local_agent_host(agent):
    from console.models import Host

    return Host.objects.get(slug=agent.slug)


def run(op):
    op = wait_terminal(op)
    assert op.status == "succeeded", op.error + op.log
    return op


def test_freeze_and_unfreeze(admin, local_agent, make_container):
    c = make_container(start=True)
    op = run(services.freeze_container(actor=admin, ctx=CTX, container=c))
    c.refresh_from_db()
    assert c.state == "FROZEN" == lxc("lxc-info", "-P", c.lxc_path, "-n", c.name, "-s", "-H")
    commands = [(command["argv"][0], command["argv"][-2:], command["seconds"]) for command in op.commands]
    if "freezer" in cgroupfs.mounts():
        # cgroup v1: the state is written, polled until FROZEN, and lxc-freeze then finds it frozen
        # at its first read: it does not sleep its second (it did in most freezes before).
        assert [(tool, tail) for tool, tail, _ in commands] == [
            ("lxc-cgroup", ["freezer.state", "FROZEN"]),
            ("lxc-freeze", ["-n", c.name]),
        ]
        assert commands[1][2] < 0.9, commands
    else:
        assert [tool for tool, _, _ in commands] == ["lxc-freeze"]
    # A frozen container cannot be frozen again.
    with pytest.raises(Conflict):
        services.freeze_container(actor=admin, ctx=CTX, container=c)
    run(services.unfreeze_container(actor=admin, ctx=CTX, container=c))
    c.refresh_from_db()
    assert c.state == "RUNNING" == lxc("lxc-info", "-P", c.lxc_path, "-n", c.name, "-s", "-H")


def test_start_is_one_command_and_shows_running(admin, local_agent, make_container):
    """lxc-start -d returns once the container is RUNNING (LXC 3+: its state socket), so the
    console runs no lxc-wait after it; the row and lxc-info agree right after."""
    c = make_container()
    op = run(services.start_container(actor=admin, ctx=CTX, container=c))
    assert [command["argv"][0] for command in op.commands] == ["lxc-start"], op.commands
    c.refresh_from_db()
    assert c.state == "RUNNING" == lxc("lxc-info", "-P", c.lxc_path, "-n", c.name, "-s", "-H")
    assert c.pid and str(c.pid) == lxc("lxc-info", "-P", c.lxc_path, "-n", c.name, "-p", "-H")


def test_restart_gives_a_new_init_pid(admin, local_agent, make_container):
    c = make_container(start=True)
    old_pid = c.pid
    run(services.restart_container(actor=admin, ctx=CTX, container=c))
    c.refresh_from_db()
    assert c.state == "RUNNING" and c.pid and c.pid != old_pid


def test_snapshot_records_origin_and_blocks_destroying_the_origin(admin, local_agent, make_container):
    origin = make_container()
    snap_name = f"{origin.name}-snap"
    op = run(
        services.copy_container(actor=admin, ctx=CTX, container=origin, new_name=snap_name, snapshot=True)
    )
    assert op.commands[0]["argv"][:1] == ["lxc-copy"] and "-s" in op.commands[0]["argv"]
    snap = Container.objects.get(pk=op.result["container_id"])
    assert snap.origin_id == origin.pk and snap.origin_kind == "snapshot"
    assert snap.rootfs.startswith("overlay:") and f"/{origin.name}/rootfs" in snap.rootfs

    copy_name = f"{origin.name}-full"
    op = run(
        services.copy_container(actor=admin, ctx=CTX, container=origin, new_name=copy_name, snapshot=False)
    )
    full = Container.objects.get(pk=op.result["container_id"])
    assert full.origin_id == origin.pk and full.origin_kind == "copy" and full.store == "dir"
    assert os.path.isfile(f"{full.lxc_path}/{copy_name}/rootfs/bin/busybox")

    # The snapshot starts for real.
    run(services.start_container(actor=admin, ctx=CTX, container=snap))

    with pytest.raises(Conflict) as refused:
        services.destroy_container(actor=admin, ctx=CTX, container=origin)
    assert snap_name in refused.value.message and copy_name not in refused.value.message
    assert os.path.isdir(f"{origin.lxc_path}/{origin.name}")

    # The clone graph and list show the origin, from the inventory.
    from django.test import Client

    client = Client()
    client.force_login(admin)
    page = client.get(f"/containers/{origin.pk}/").content.decode()
    assert snap_name in page and copy_name in page
    listing = client.get("/containers/").content.decode()
    assert f'snapshot of <a href="/containers/{origin.pk}/">{origin.name}</a>' in listing

    # Destroy in the safe order: snapshot (stop first), then the origin.
    run(services.destroy_container(actor=admin, ctx=CTX, container=snap, stop_first=True))
    origin.refresh_from_db()
    run(services.destroy_container(actor=admin, ctx=CTX, container=origin))
    assert not os.path.exists(f"{origin.lxc_path}/{origin.name}")
    full.refresh_from_db()
    assert full.origin_id is None  # the independent copy survives its origin


def test_copy_of_a_running_container_is_refused(admin, local_agent, make_container):
    c = make_container(start=True)
    with pytest.raises(Conflict, match="stop it first"):
        services.copy_container(actor=admin, ctx=CTX, container=c, new_name="x-copy", snapshot=True)
    assert not Operation.objects.filter(kind="container.snapshot").exists()


def test_attach_runs_the_command_inside_and_shows_its_output(admin, local_agent, make_container):
    c = make_container(start=True)
    op = run(services.attach_command(actor=admin, ctx=CTX, container=c, command="hostname"))
    assert op.result["exit"] == 0
    assert op.result["stdout"].strip() == c.name  # the container's own hostname, not the host's
    assert "-- hostname" in op.log

    # Shell metacharacters are arguments, not shell syntax: nothing is written on the host.
    marker = f"/tmp/attach-{uuid.uuid4().hex}"
    op = wait_terminal(
        services.attach_command(actor=admin, ctx=CTX, container=c, command=f"echo hi; touch {marker}")
    )
    assert op.status == "succeeded"
    assert op.result["stdout"].strip() == f"hi; touch {marker}"
    assert not os.path.exists(marker)

    op = wait_terminal(services.attach_command(actor=admin, ctx=CTX, container=c, command="sh -c 'exit 3'"))
    assert op.status == "failed" and "status 3" in op.error and op.result["exit"] == 3
    # It ran to its end: the card says the exit status plainly, with full progress, not "Failed".
    assert (op.progress, op.progress_label) == (100, "exited with status 3")
    from django.template.loader import render_to_string

    card = render_to_string("console/_operation.html", {"op": op})
    assert 'data-exit-status="3"' in card and "Failed:" not in card
    # The form's example works in a busybox container.
    example = wait_terminal(services.attach_command(actor=admin, ctx=CTX, container=c, command="uname -a"))
    assert example.status == "succeeded" and "Linux" in example.result["stdout"]


def test_config_keys_and_raw_edit_are_written_and_audited(admin, local_agent, make_container):
    c = make_container()
    run(
        services.set_config_values(
            actor=admin,
            ctx=CTX,
            container=c,
            values={"lxc.start.auto": "1", "lxc.start.delay": "5", "lxc.group": "web,db"},
        )
    )
    text = open(f"{c.lxc_path}/{c.name}/config").read()
    assert "lxc.start.auto = 1" in text and "lxc.start.delay = 5" in text
    assert "lxc.group = web\nlxc.group = db" in text
    listed = lxc("lxc-autostart", "-P", c.lxc_path, "--list", "--group", "db")
    assert c.name in listed.split()
    c.refresh_from_db()
    assert c.autostart and c.start_delay == 5 and c.groups == ["web", "db"]
    event = AuditEvent.objects.filter(action="container.config.set").latest("pk")
    assert event.before == {"lxc.start.auto": "", "lxc.start.delay": "", "lxc.group": ""}
    assert event.after == {"lxc.start.auto": "1", "lxc.start.delay": "5", "lxc.group": "web,db"}

    old = c.config_text
    new = old.replace("lxc.tty.max = 5", "lxc.tty.max = 3")
    run(services.replace_config(actor=admin, ctx=CTX, container=c, text=new, base_hash=config_hash(old)))
    assert "lxc.tty.max = 3" in open(f"{c.lxc_path}/{c.name}/config").read()
    event = AuditEvent.objects.filter(action="container.config.replace").latest("pk")
    assert event.before == {"config": old} and "lxc.tty.max = 3" in event.after["config"]

    # A stale editor (based on the old text) is refused and writes nothing.
    c.refresh_from_db()
    with pytest.raises(Conflict):
        services.replace_config(actor=admin, ctx=CTX, container=c, text=old, base_hash=config_hash(old))
    # An invalid value is refused with the key named, and nothing is queued.
    before = Operation.objects.count()
    with pytest.raises(InvalidInput, match="lxc.start.delay"):
        services.set_config_values(actor=admin, ctx=CTX, container=c, values={"lxc.start.delay": "soon"})
    assert Operation.objects.count() == before


def test_state_changes_made_outside_the_console_appear_within_two_seconds(admin, local_agent, make_container):
    c = make_container(start=True)
    started = time.monotonic()
    subprocess.run(["lxc-stop", "-P", c.lxc_path, "-n", c.name, "-k"], check=True, capture_output=True)
    wait_for(
        lambda: Container.objects.filter(pk=c.pk, state="STOPPED").exists(),
        2.0,
        interval=0.02,
        what="STOPPED",
    )
    latency = time.monotonic() - started
    subprocess.run(["lxc-start", "-P", c.lxc_path, "-n", c.name, "-d"], check=True, capture_output=True)
    wait_for(
        lambda: Container.objects.filter(pk=c.pk, state="RUNNING").exists(),
        2.0,
        interval=0.02,
        what="RUNNING",
    )
    print(f"\nstate-change latency (external lxc-stop -k -> STOPPED in the database): {latency:.3f} s")


def test_browse_and_download_files_of_a_running_container(client, admin, local_agent, make_container):
    c = make_container(start=True)
    rootfs = f"{c.lxc_path}/{c.name}/rootfs"
    with open(f"{rootfs}/etc/console-marker", "w") as fh:
        fh.write("inside the container\n")
    os.symlink("/etc/shadow", f"{rootfs}/etc/escape-link")
    with open(f"{rootfs}/etc/shadow", "w") as fh:
        fh.write("container shadow\n")
    client.force_login(admin)

    page = client.post(f"/containers/{c.pk}/files/", {"path": "/etc"})
    assert page.status_code == 303
    op = wait_terminal(Operation.objects.filter(kind="container.files.list").latest("pk"))
    assert page["Location"] == f"/containers/{c.pk}/files/?path=%2Fetc&op={op.pk}"
    assert op.status == "succeeded", op.error + op.log
    names = {e["name"]: e for e in op.result["entries"]}
    assert "console-marker" in names and names["escape-link"]["type"] == "symlink"
    result = client.get(f"/containers/{c.pk}/files/result/{op.pk}/", HTTP_HX_REQUEST="true")
    assert result.status_code == 286 and "console-marker" in result.content.decode()

    # Downloading through an absolute symlink and through ".." stays inside the container.
    for path in ("/etc/escape-link", "/../../../../etc/shadow"):
        client.post(f"/containers/{c.pk}/files/", {"path": path, "download": "1"})
        op = wait_terminal(Operation.objects.filter(kind="container.files.read").latest("pk"))
        assert op.status == "succeeded", op.error + op.log
        blob = client.get(f"/containers/{c.pk}/files/blob/{op.pk}/")
        assert blob.status_code == 200 and blob.content == b"container shadow\n"
        assert "attachment" in blob["Content-Disposition"]

    # Each read is audited, with the path.
    reads = AuditEvent.objects.filter(action="container.files.read")
    assert reads.count() == 2 and reads.filter(params__path="/etc/escape-link").exists()

    # A file over the cap is refused with the sizes named, nothing stored.
    with open(f"{rootfs}/big.bin", "wb") as fh:
        fh.write(b"x" * 4096)
    from django.test import override_settings  # noqa: F401  (the agent process has its own settings)

    client.post(f"/containers/{c.pk}/files/", {"file": "/dev/null"})
    op = wait_terminal(Operation.objects.filter(kind="container.files.read").latest("pk"))
    assert op.status == "failed" and "not a regular file" in op.error.lower() or "regular" in op.error


def _listing(client, c: Container, response) -> tuple[Operation, str]:
    """Follow a file-browser POST's redirect: the listing operation and its rendered rows."""
    assert response.status_code == 303, response.content[:300]
    op = wait_terminal(Operation.objects.filter(kind="container.files.list").latest("pk"))
    assert op.status == "succeeded", op.error + op.log
    page = client.get(response["Location"])
    assert page.status_code == 200 and op.params["path"] in html.unescape(page.content.decode())
    rows = client.get(f"/containers/{c.pk}/files/result/{op.pk}/", HTTP_HX_REQUEST="true").content.decode()
    return op, rows


def _entry(rows: str, label: str) -> dict:
    """The form data the browser sends when the entry button labelled ``label`` is clicked."""
    for name, value, text in re.findall(
        r'<button class="entry" name="(\w+)" value="([^"]*)">([^<]*)</button>', rows
    ):
        if html.unescape(text) == label:
            return {name: html.unescape(value)}
    raise AssertionError(f"no entry {label!r} in {rows[:2000]}")


def test_directory_names_are_sent_as_they_are(client, admin, local_agent, make_container):
    """Issue 12.12: a directory named ``x&download=1`` (made inside the real container) is
    followed as itself, and so is its subdirectory; ``..`` leads back."""
    c = make_container(start=True)
    odd = "x&download=1 #?%2F"
    subprocess.run(
        ["lxc-attach", "-P", c.lxc_path, "-n", c.name, "--", "/bin/mkdir", "-p", f"/srv/{odd}/sub"],
        check=True,
        timeout=30,
    )
    client.force_login(admin)
    url = f"/containers/{c.pk}/files/"
    _, rows = _listing(client, c, client.post(url, {"path": "/srv"}))
    op, rows = _listing(client, c, client.post(url, _entry(rows, f"{odd}/")))
    assert op.params["path"] == f"/srv/{odd}" and [e["name"] for e in op.result["entries"]] == ["sub"]
    op, rows = _listing(client, c, client.post(url, _entry(rows, "sub/")))
    assert op.params["path"] == f"/srv/{odd}/sub" and op.result["path"] == f"/srv/{odd}/sub"
    op, _ = _listing(client, c, client.post(url, _entry(rows, "..")))
    assert op.result["path"] == f"/srv/{odd}"
    assert not Operation.objects.filter(kind="container.files.read").exists()


def test_file_browser_is_refused_for_a_stopped_container(client, admin, local_agent, make_container):
    c = make_container()
    client.force_login(admin)
    page = client.post(f"/containers/{c.pk}/files/", {"path": "/"})
    assert page.status_code == 409 and "only while it runs" in page.content.decode()
    assert not Operation.objects.filter(kind="container.files.list").exists()
