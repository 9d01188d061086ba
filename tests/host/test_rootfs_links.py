"""Root never follows a link planted inside a container (issue 12.2), on real containers.

Someone attached to a running container (``lxc-attach``) plants symbolic links where the
agent writes: the start hook's script and its directory inside the rootfs, and
``/etc/hostname`` of a new container's tree. The host file or directory they point to must
stay untouched, and the operation must fail saying why; the normal case keeps working.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Set as AbstractSet
from pathlib import Path

import pytest

from console.models import Host
from console.operations import RequestContext
from containers import services
from containers.models import Container
from tests.host.helpers import wait_terminal

pytestmark = pytest.mark.host
CTX = RequestContext(ip="127.0.0.1", request_id="rootfs-links-test")
HOST_CONTENT = b"host file: root must never write here\n"
HOOK_DIR = "/usr/local/lib/lxc-console"


def run(op):
    op = wait_terminal(op)
    assert op.status == "succeeded", op.error + op.log
    return op


@pytest.fixture
def agent_host(local_agent) -> Host:
    return Host.objects.get(slug=local_agent.slug)


def attach(c: Container, script: str) -> None:
    """Run ``script`` inside the running container, as an operator with a terminal would."""
    subprocess.run(
        ["lxc-attach", "-P", c.lxc_path, "-n", c.name, "--", "/bin/sh", "-c", script],
        check=True,
        capture_output=True,
        timeout=30,
    )


@pytest.fixture
def host_targets():
    """A host file (mode 0600) and an empty host directory, outside every container."""
    with tempfile.TemporaryDirectory(prefix="console-host-target-", dir="/var/tmp") as tmp:
        target = Path(tmp) / "file"
        target.write_bytes(HOST_CONTENT)
        target.chmod(0o600)
        directory = Path(tmp) / "dir"
        directory.mkdir()
        yield target, directory


def untouched(target: Path, directory: Path, *, allowed: AbstractSet[str] = frozenset()) -> None:
    assert target.read_bytes() == HOST_CONTENT
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert set(os.listdir(directory)) == set(allowed)


def failed(op) -> str:
    op = wait_terminal(op)
    assert op.status == "failed", op.log
    return op.error


def config(c: Container) -> str:
    return Path(c.lxc_path, c.name, "config").read_text()


def test_start_hook_is_never_written_or_removed_through_planted_links(admin, agent_host, host_targets):
    target, directory = host_targets
    name = f"rl-{uuid.uuid4().hex[:6]}"
    c = Container.objects.get(
        pk=run(services.create_container(actor=admin, ctx=CTX, host=agent_host, name=name)).result[
            "container_id"
        ]
    )
    run(services.start_container(actor=admin, ctx=CTX, container=c))
    rootfs = Path(c.lxc_path, c.name, "rootfs")
    script = "#!/bin/sh\necho ran > /hook-ran\n"

    def set_start_hook():
        return services.set_hook(actor=admin, ctx=CTX, container=c, hook_type="start", script=script)

    # The old, predictable temporary name: a link there is simply never used now.
    attach(c, f"mkdir -p {HOOK_DIR} && ln -s {target} {HOOK_DIR}/.hook-start.console-tmp")
    run(set_start_hook())
    untouched(target, directory)
    hook = rootfs / HOOK_DIR.lstrip("/") / "hook-start"
    assert hook.read_text() == script and not hook.is_symlink()
    assert stat.S_IMODE(hook.stat().st_mode) == 0o750
    saved = config(c)
    assert f"lxc.hook.start = {HOOK_DIR}/hook-start" in saved

    # A link at the script's own name.
    attach(c, f"rm -f {HOOK_DIR}/hook-start && ln -s {target} {HOOK_DIR}/hook-start")
    error = failed(set_start_hook())
    assert f"{HOOK_DIR}/hook-start is a symbolic link inside the container" in error
    assert "nothing was written" in error
    untouched(target, directory)
    assert config(c) == saved

    # Removing it: the link is refused, not followed, and the config keeps its hook.
    error = failed(services.remove_hook(actor=admin, ctx=CTX, container=c, hook_type="start"))
    assert "symbolic link inside the container" in error
    untouched(target, directory)
    assert config(c) == saved

    # A linked directory: the script's directory, then one of its parents.
    for linked in (HOOK_DIR, "/usr/local/lib"):
        attach(
            c,
            f"rm -rf {HOOK_DIR} && mkdir -p /usr/local/lib && rm -rf {linked} && ln -s {directory} {linked}",
        )
        error = failed(set_start_hook())
        assert f"{linked} is a symbolic link inside the container" in error
        untouched(target, directory)
        attach(c, f"rm {linked} && mkdir -p {linked}")

    # A linked directory whose host twin holds a file of the hook's name: not removed.
    attach(c, f"rm -rf {HOOK_DIR} && ln -s {directory} {HOOK_DIR}")
    (directory / "hook-start").write_bytes(HOST_CONTENT)
    error = failed(services.remove_hook(actor=admin, ctx=CTX, container=c, hook_type="start"))
    assert f"{HOOK_DIR} is a symbolic link inside the container" in error
    assert (directory / "hook-start").read_bytes() == HOST_CONTENT
    (directory / "hook-start").unlink()
    assert config(c) == saved

    # The normal case: the links gone, the hook is saved again and runs at the next start.
    attach(c, f"rm {HOOK_DIR}")
    run(set_start_hook())
    c.refresh_from_db()
    run(services.stop_container(actor=admin, ctx=CTX, container=c))
    c.refresh_from_db()
    run(services.start_container(actor=admin, ctx=CTX, container=c))
    assert (rootfs / "hook-ran").read_text() == "ran\n"
    untouched(target, directory)
    run(services.remove_hook(actor=admin, ctx=CTX, container=c, hook_type="start"))
    assert not hook.exists() and "lxc.hook.start" not in config(c)


def test_a_tarball_whose_hostname_is_a_link_fails_without_writing_through_it(
    admin, agent_host, host_targets, settings, tmp_path
):
    host = agent_host
    target, directory = host_targets
    images = tmp_path / "images"
    images.mkdir()
    settings.ROOTFS_TARBALL_DIRS = [str(images)]
    for case, member in (("file", ("etc/hostname", str(target))), ("dir", ("etc", str(directory)))):
        tarball = images / f"{case}.tar"
        with tarfile.open(tarball, "w") as tar:
            for name in ("bin", "etc") if case == "file" else ("bin",):
                info = tarfile.TarInfo(name)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            link = tarfile.TarInfo(member[0])
            link.type, link.linkname = tarfile.SYMTYPE, member[1]
            tar.addfile(link)
        name = f"tl-{case}-{uuid.uuid4().hex[:6]}"
        error = failed(
            services.create_container(
                actor=admin, ctx=CTX, host=host, name=name, template="tarball", tarball=str(tarball)
            )
        )
        assert f"/{member[0]} is a symbolic link inside the container" in error
        assert "/etc/hostname" in error
        untouched(target, directory)
        assert not Path(host.lxc_path, name).exists()  # the half-made container was removed


def test_a_mount_target_is_never_made_through_a_planted_link(admin, agent_host, host_targets):
    """The agent makes a bind mount's target itself, confined to the rootfs; LXC's create= option
    (which made a directory in a host directory through a planted link at the next start) is
    no longer written."""
    target, directory = host_targets
    shared = directory.parent / "shared"
    shared.mkdir()
    run(services.set_mount_roots(actor=admin, ctx=CTX, host=agent_host, roots=[str(shared)]))
    agent_host.refresh_from_db()
    name = f"rm-{uuid.uuid4().hex[:6]}"
    created = run(services.create_container(actor=admin, ctx=CTX, host=agent_host, name=name))
    c = Container.objects.get(pk=created.result["container_id"])
    run(services.start_container(actor=admin, ctx=CTX, container=c))
    c.refresh_from_db()

    def add(target_path: str):
        c.refresh_from_db()
        return services.add_mount(actor=admin, ctx=CTX, container=c, source=str(shared), target=target_path)

    attach(c, f"mkdir -p /srv && ln -s {directory} /srv/linked && ln -s {directory} /srv/data")
    for target_path, linked in (("srv/linked/data", "/srv/linked"), ("srv/data", "/srv/data")):
        error = failed(add(target_path))
        assert f"{linked} is a symbolic link inside the container" in error
        untouched(target, directory)
    assert str(shared) not in config(c)  # no entry was added

    # The normal case: the target is made, the entry has no create=, the mount works.
    op = run(add("srv/shared"))
    assert op.result["entry"] == f"{shared} srv/shared none ro,bind 0 0"
    (shared / "hello").write_text("hello\n")
    c.refresh_from_db()
    run(services.stop_container(actor=admin, ctx=CTX, container=c))
    c.refresh_from_db()
    run(services.start_container(actor=admin, ctx=CTX, container=c))
    out = subprocess.run(
        ["lxc-attach", "-P", c.lxc_path, "-n", c.name, "--", "cat", "/srv/shared/hello"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.stdout == "hello\n"

    # The target swapped for a link afterwards: the next start makes nothing on the host.
    attach(c, f"umount /srv/shared; rmdir /srv/shared && ln -s {directory}/new /srv/shared")
    c.refresh_from_db()
    run(services.stop_container(actor=admin, ctx=CTX, container=c))
    c.refresh_from_db()
    wait_terminal(services.start_container(actor=admin, ctx=CTX, container=c))  # LXC may refuse
    untouched(target, directory)
