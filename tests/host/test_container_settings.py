"""Autostart groups, hooks, bind mounts and cgroup limits on real busybox containers."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid

import pytest

from console.errors import InvalidInput
from console.models import AuditEvent, Host, Operation
from console.operations import RequestContext
from containers import services
from containers.models import Container
from tests.host.helpers import wait_terminal
from tests.hosttools import wait_for

pytestmark = pytest.mark.host
CTX = RequestContext(ip="127.0.0.1", request_id="settings-test")


def run(op):
    op = wait_terminal(op)
    assert op.status == "succeeded", op.error + op.log
    return op


@pytest.fixture
def host(local_agent):
    return Host.objects.get(slug=local_agent.slug)


@pytest.fixture
def make_container(admin, host):
    def make(*, start: bool = False, name: str | None = None) -> Container:
        op = run(
            services.create_container(
                actor=admin, ctx=CTX, host=host, name=name or f"s-{uuid.uuid4().hex[:6]}"
            )
        )
        container = Container.objects.get(pk=op.result["container_id"])
        if start:
            run(services.start_container(actor=admin, ctx=CTX, container=container))
            container.refresh_from_db()
        return container

    return make


def lxc_cgroup(c: Container, key: str) -> str:
    return subprocess.run(
        ["lxc-cgroup", "-P", c.lxc_path, "-n", c.name, key], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_memory_limit_is_applied_read_back_and_saved(admin, make_container):
    c = make_container(start=True)
    op = run(services.set_limit(actor=admin, ctx=CTX, container=c, key="memory.limit_in_bytes", value="256M"))
    assert lxc_cgroup(c, "memory.limit_in_bytes") == "268435456"
    assert op.result["live"] == "268435456" and op.result["applied"]
    assert "lxc.cgroup.memory.limit_in_bytes = 268435456" in open(f"{c.lxc_path}/{c.name}/config").read()
    c.refresh_from_db()
    assert c.cgroup_live["memory.limit_in_bytes"] == "268435456"
    event = AuditEvent.objects.filter(action="container.limit.set").latest("pk")
    assert event.before == {"saved": None, "live": c.cgroup_live and event.before["live"]}
    assert event.after == {"value": "268435456"}

    run(services.set_limit(actor=admin, ctx=CTX, container=c, key="cpuset.cpus", value="0", persist=False))
    assert lxc_cgroup(c, "cpuset.cpus") == "0"
    assert "lxc.cgroup.cpuset.cpus" not in open(f"{c.lxc_path}/{c.name}/config").read()
    run(services.set_limit(actor=admin, ctx=CTX, container=c, key="cpu.shares", value="512", apply_live=True))
    assert lxc_cgroup(c, "cpu.shares") == "512"

    # The limits page marks a live value that differs from the saved one.
    subprocess.run(["lxc-cgroup", "-P", c.lxc_path, "-n", c.name, "cpu.shares", "256"], check=True)
    run(services.restart_container(actor=admin, ctx=CTX, container=c))  # back to the saved 512
    assert lxc_cgroup(c, "cpu.shares") == "512"
    subprocess.run(["lxc-cgroup", "-P", c.lxc_path, "-n", c.name, "cpu.shares", "256"], check=True)
    from containers.inventory import refresh_container

    refresh_container(c.host, c.lxc_path, c.name)
    from django.test import Client

    client = Client()
    client.force_login(admin)
    page = client.get(f"/containers/{c.pk}/limits/").content.decode()
    row = page.split('data-key="cpu.shares"')[1].split("</tr>")[0]
    assert "512" in row and "256" in row and "differs" in row


def test_bad_limits_are_refused_and_change_nothing(admin, make_container):
    c = make_container(start=True)
    config_before = open(f"{c.lxc_path}/{c.name}/config").read()
    with pytest.raises(InvalidInput, match="CPU 7 does not exist"):
        services.set_limit(actor=admin, ctx=CTX, container=c, key="cpuset.cpus", value="7")
    with pytest.raises(InvalidInput, match="not an allowed cgroup key"):
        services.set_limit(actor=admin, ctx=CTX, container=c, key="devices.allow", value="a")
    # Make the container use ~24 MiB (tmpfs pages count), then ask for less.
    subprocess.run(
        [
            "lxc-attach",
            "-P",
            c.lxc_path,
            "-n",
            c.name,
            "--",
            "dd",
            "if=/dev/zero",
            "of=/dev/shm/fill",
            "bs=1M",
            "count=24",
        ],
        check=True,
        capture_output=True,
    )
    from containers.inventory import refresh_container

    c = refresh_container(c.host, c.lxc_path, c.name)
    assert c.usage["memory_bytes"] > 20 * 1024**2
    with pytest.raises(InvalidInput, match="below the"):
        services.set_limit(actor=admin, ctx=CTX, container=c, key="memory.limit_in_bytes", value="8M")
    assert not Operation.objects.filter(kind="container.limit.set").exists()

    # blkio.weight is refused by this kernel: a clear failure, nothing saved.
    op = wait_terminal(services.set_limit(actor=admin, ctx=CTX, container=c, key="blkio.weight", value="500"))
    assert op.status == "failed"
    assert "blkio.weight" in op.error and "nothing was saved" in op.error
    assert open(f"{c.lxc_path}/{c.name}/config").read() == config_before
    # ... unless asked to save it anyway.
    op = run(
        services.set_limit(
            actor=admin, ctx=CTX, container=c, key="blkio.weight", value="500", persist_if_refused=True
        )
    )
    assert op.result["applied"] is False
    assert "lxc.cgroup.blkio.weight = 500" in open(f"{c.lxc_path}/{c.name}/config").read()


def test_pre_start_hook_receives_the_lxc_variables_and_its_output_is_logged(admin, make_container):
    c = make_container()
    out = tempfile.mktemp(prefix="hook-vars-", dir="/var/tmp")
    script = (
        "#!/bin/sh\n"
        f'printf "%s\\n" "$LXC_NAME" "$LXC_ROOTFS_MOUNT" "$LXC_CONFIG_FILE" "$LXC_ROOTFS_PATH" > {out}\n'
        'echo "pre-start hook says hello to $LXC_NAME"\n'
    )
    run(services.set_hook(actor=admin, ctx=CTX, container=c, hook_type="pre-start", script=script))
    hook_file = f"{c.lxc_path}/{c.name}/hooks/pre-start"
    assert os.access(hook_file, os.X_OK)
    assert f"lxc.hook.pre-start = {hook_file}" in open(f"{c.lxc_path}/{c.name}/config").read()
    assert AuditEvent.objects.filter(action="container.hook.set", after__script=script).exists()

    start = run(services.start_container(actor=admin, ctx=CTX, container=c))
    try:
        lines = open(out).read().splitlines()
    finally:
        os.unlink(out)
    assert lines[0] == c.name
    assert lines[1]  # the rootfs mount point
    assert lines[2] == f"{c.lxc_path}/{c.name}/config"
    assert lines[3] == f"{c.lxc_path}/{c.name}/rootfs"  # lxc.rootfs.path without its "dir:"
    assert f"# hook: pre-start hook says hello to {c.name}" in start.log


def test_failing_pre_start_hook_keeps_the_container_stopped_and_says_why(admin, make_container):
    c = make_container()
    run(
        services.set_hook(
            actor=admin,
            ctx=CTX,
            container=c,
            hook_type="pre-start",
            script="#!/bin/sh\necho no way >&2\nexit 3\n",
        )
    )
    op = wait_terminal(services.start_container(actor=admin, ctx=CTX, container=c))
    assert op.status == "failed"
    assert "lxc.hook.pre-start" in op.error and "status 3" in op.error
    assert "# hook: no way" in op.log
    c.refresh_from_db()
    assert c.state == "STOPPED"
    # The lock is released and the hook can be removed.
    run(services.remove_hook(actor=admin, ctx=CTX, container=c, hook_type="pre-start"))
    assert "lxc.hook.pre-start" not in open(f"{c.lxc_path}/{c.name}/config").read()
    run(services.start_container(actor=admin, ctx=CTX, container=c))


def test_stop_and_destroy_hooks_output_reaches_their_operations(admin, make_container):
    c = make_container(start=False)
    run(
        services.set_hook(
            actor=admin,
            ctx=CTX,
            container=c,
            hook_type="post-stop",
            script="#!/bin/sh\necho post-stop of $LXC_NAME\n",
        )
    )
    run(
        services.set_hook(
            actor=admin,
            ctx=CTX,
            container=c,
            hook_type="destroy",
            script="#!/bin/sh\necho destroying $LXC_NAME\n",
        )
    )
    run(services.start_container(actor=admin, ctx=CTX, container=c))
    c.refresh_from_db()
    stop = run(services.stop_container(actor=admin, ctx=CTX, container=c, force=True))
    assert f"# hook: post-stop of {c.name}" in stop.log
    c.refresh_from_db()
    destroy = run(services.destroy_container(actor=admin, ctx=CTX, container=c))
    assert f"# hook: destroying {c.name}" in destroy.log


def test_bind_mount_from_an_allowed_root_is_visible_inside(admin, host, make_container):
    shared = tempfile.mkdtemp(prefix="console-shared-", dir="/var/tmp")
    try:
        with open(f"{shared}/hello.txt", "w") as fh:
            fh.write("from the host\n")
        c = make_container()
        with pytest.raises(InvalidInput, match="allowed roots"):
            services.add_mount(actor=admin, ctx=CTX, container=c, source=shared, target="mnt/shared")
        run(services.set_mount_roots(actor=admin, ctx=CTX, host=host, roots=[shared]))  # the agent checks it
        c = Container.objects.select_related("host").get(pk=c.pk)
        for bad_target, message in (
            ("/mnt/x", "relative"),
            ("mnt/../../etc", "'..'"),
            ("mnt/a b", "only letters"),
        ):
            with pytest.raises(InvalidInput, match=message):
                services.add_mount(actor=admin, ctx=CTX, container=c, source=shared, target=bad_target)
        with pytest.raises(InvalidInput, match="outside the allowed roots"):
            services.add_mount(
                actor=admin, ctx=CTX, container=c, source=f"{shared}/../../etc", target="mnt/etc"
            )
        op = run(services.add_mount(actor=admin, ctx=CTX, container=c, source=shared, target="mnt/shared"))
        # The agent made the target itself (no create=: LXC would follow a link planted there).
        assert op.result["entry"] == f"{shared} mnt/shared none ro,bind 0 0"
        assert os.path.isdir(f"{c.lxc_path}/{c.name}/rootfs/mnt/shared")
        # A symlink inside the root that points outside it is caught by the agent.
        os.symlink("/etc", f"{shared}/escape")
        bad = wait_terminal(
            services.add_mount(actor=admin, ctx=CTX, container=c, source=f"{shared}/escape", target="mnt/esc")
        )
        assert bad.status == "failed" and "outside the allowed roots" in bad.error
        run(services.start_container(actor=admin, ctx=CTX, container=c))
        out = subprocess.run(
            ["lxc-attach", "-P", c.lxc_path, "-n", c.name, "--", "cat", "/mnt/shared/hello.txt"],
            capture_output=True,
            text=True,
        )
        assert out.stdout == "from the host\n"
        denied = subprocess.run(
            ["lxc-attach", "-P", c.lxc_path, "-n", c.name, "--", "touch", "/mnt/shared/new"],
            capture_output=True,
            text=True,
        )
        assert denied.returncode != 0 and not os.path.exists(f"{shared}/new")  # read-only
    finally:
        import shutil

        shutil.rmtree(shared, ignore_errors=True)


def test_autostart_page_agrees_with_lxc_autostart_list(admin, host, make_container, client):
    names = {}
    for label, values in {
        "a": {"lxc.start.auto": "1", "lxc.start.order": "5", "lxc.start.delay": "3", "lxc.group": "web"},
        "b": {"lxc.start.auto": "1", "lxc.start.order": "10", "lxc.group": "web,db"},
        "c": {"lxc.start.auto": "1"},
        "d": {"lxc.start.auto": "0", "lxc.group": "web"},
        "e": {"lxc.start.auto": "1", "lxc.start.order": "-2", "lxc.group": "web"},
    }.items():
        c = make_container(name=f"as{label}-{uuid.uuid4().hex[:4]}")
        run(services.set_config_values(actor=admin, ctx=CTX, container=c, values=values))
        names[label] = c.name
    client.force_login(admin)
    for query, argv in (
        ({}, []),
        ({"group": "web"}, ["--group", "web"]),
        ({"group": "db"}, ["--group", "db"]),
        ({"all": "1"}, ["--all"]),
    ):
        listed = subprocess.run(
            ["lxc-autostart", "-P", host.lxc_path, "--list", *argv],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        expected = listed[::2]
        page = client.get(f"/containers/autostart/{host.slug}/", query).content.decode()
        shown = [chunk.split('"')[0] for chunk in page.split('<tr data-name="')[1:]]
        assert shown == expected, (query, shown, listed)
    assert names["d"] not in page

    # Start group web as an operation; the ones listed are running afterwards.
    op = run(services.autostart_host(actor=admin, ctx=CTX, host=host, group="web"))
    for label in ("a", "b", "e"):
        assert Container.objects.get(name=names[label]).state == "RUNNING"
    assert Container.objects.get(name=names["c"]).state == "STOPPED"
    assert sorted(op.result["started"]) == sorted([names["a"], names["b"], names["e"]])
    with pytest.raises(InvalidInput):
        services.autostart_host(actor=admin, ctx=CTX, host=host, group="web;reboot")


def test_agent_runs_the_boot_autostart_once_per_boot(admin, start_agent, monkeypatch):
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    lxc_path = agent.lxc_path
    name = f"boot-{uuid.uuid4().hex[:4]}"
    subprocess.run(
        ["lxc-create", "-P", lxc_path, "-n", name, "-t", "busybox"], check=True, capture_output=True
    )
    with open(f"{lxc_path}/{name}/config", "a") as fh:
        fh.write("lxc.apparmor.profile = unconfined\nlxc.start.auto = 1\nlxc.group = onboot\n")
    agent.stop()
    Host.objects.filter(pk=host.pk).update(autostart_boot_id="an-earlier-boot")
    monkeypatch.setenv("TEST_AUTOSTART_BOOT_WINDOW", str(10**9))  # "the host booted just now"
    start_agent(slug=agent.slug, lxc_path=lxc_path)
    op = wait_for(
        lambda: Operation.objects.filter(kind="host.autostart", status="succeeded").first(),
        30,
        what="boot autostart",
    )
    assert op.actor is None and op.params["group"] == "onboot,"
    assert wait_for(lambda: Container.objects.filter(name=name, state="RUNNING").exists(), 10, what="RUNNING")
    assert AuditEvent.objects.filter(action="host.autostart", actor_name="system").count() == 1
    # A second agent start in the same boot does not autostart again.
    Host.objects.get(pk=host.pk)
    assert (
        Host.objects.get(pk=host.pk).autostart_boot_id
        == open("/proc/sys/kernel/random/boot_id").read().strip()
    )
