"""Storage tests: the host tests' Redis + agent fixtures, fixtures files, the usual storage world."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from console.errors import ServiceError
from console.models import AuditEvent, Operation
from console.operations import RequestContext
from storage import services
from storage.drivers.loop import read_mounts
from storage.models import HostStorage
from tests.host.conftest import *  # noqa: F403
from tests.host.conftest import destroy_all_containers
from tests.hosttools import require_root, require_tool

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_text(name: str) -> str:
    """A real command output, stored verbatim (seed chapter or captured on a host of this kind)."""
    return (FIXTURES / name).read_text()


LVM_ENV = {**os.environ, "LVM_SUPPRESS_FD_WARNINGS": "1"}


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=120, env=LVM_ENV)


def our_loops(root: Path) -> dict[str, str]:
    """Loop devices whose backing file lies under ``root`` (so this test attached them)."""
    data = json.loads(sh("losetup", "--list", "--json").stdout or "{}")
    return {
        d["name"]: d["back-file"]
        for d in data.get("loopdevices", [])
        if (d.get("back-file") or "").startswith(str(root) + "/")
    }


def take_apart(root: Path) -> None:
    """Teardown, in the safe order: containers, mounts, volume groups, loop devices, files."""
    mounts = sorted(
        (t for _s, t, _f in read_mounts() if t.startswith(str(root) + "/")), key=len, reverse=True
    )
    for target in mounts:
        destroy_all_containers(target)
        if sh("umount", target, check=False).returncode != 0:
            sh("umount", "-l", target, check=False)
    loops = our_loops(root)
    pvs = json.loads(
        sh("pvs", "--reportformat", "json", "-o", "pv_name,vg_name", check=False).stdout or '{"report": []}'
    )
    for report in pvs.get("report", []):
        for pv in report.get("pv", []):
            if pv["pv_name"] in loops:
                if pv.get("vg_name"):
                    sh("vgremove", "-f", pv["vg_name"], check=False)
                sh("pvremove", "-ff", "-y", pv["pv_name"], check=False)
    for device in loops:
        sh("losetup", "-d", device, check=False)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def storage_env(monkeypatch, settings):
    """A private image and pool directory for the test and its agent; everything under it is undone."""
    require_root()
    require_tool(
        "losetup",
        "truncate",
        "dd",
        "blkid",
        "lsblk",
        "wipefs",
        "mount",
        "umount",
        "mkfs.btrfs",
        "btrfs",
        "pvcreate",
        "vgcreate",
        "vgremove",
        "pvremove",
        "pvs",
        "vgs",
        "lvs",
        "lxc-create",
        "lxc-copy",
    )
    root = Path(tempfile.mkdtemp(prefix="console-test-storage-", dir="/var/tmp"))
    for name, sub in (("STORAGE_IMAGE_DIR", "images"), ("STORAGE_POOL_DIR", "pools")):
        monkeypatch.setenv(name, str(root / sub))  # the agent inherits the environment
        setattr(settings, name, str(root / sub))
    try:
        yield root
    finally:
        take_apart(root)
        assert not our_loops(root), "a loop device of this test is still attached"


# --- the usual storage world of the service and page tests (no agent, nothing runs) ---

CTX = RequestContext(ip="192.0.2.20", request_id="req-storage")

G = 1024**3


@pytest.fixture
def storage_host(host, settings, tmp_path):
    settings.STORAGE_IMAGE_DIR = str(tmp_path / "images")
    settings.STORAGE_POOL_DIR = str(tmp_path / "pools")
    host.capabilities = {
        **host.capabilities,
        "loop": {"available": True, "devices": 8},
        "lvm": {"available": True, "device_mapper": False},
        "zfs": {"available": False, "kernel": False},
    }
    host.save()
    HostStorage.objects.create(
        host=host,
        image_dir=str(tmp_path / "images"),
        image_dir_free_bytes=10 * G,
        volume_groups=["vg0"],
        block_devices=[
            {"path": "/dev/vda", "size": 250 * G, "type": "disk", "fstype": "ext4", "mountpoint": "/"},
            {"path": "/dev/loop0", "size": 2 * G, "type": "loop", "fstype": "", "mountpoint": ""},
            {"path": "/dev/loop1", "size": 2 * G, "type": "loop", "fstype": "btrfs", "mountpoint": ""},
            {"path": "/dev/loop2", "size": 2 * G, "type": "loop", "fstype": "btrfs", "mountpoint": "/mnt/x"},
            {"path": "/dev/loop3", "size": 64 * 1024**2, "type": "loop", "fstype": "", "mountpoint": ""},
        ],
    )
    return host


@pytest.fixture
def inventory(host):
    return HostStorage.objects.create(
        host=host,
        image_dir="/var/lib/lxc-console/storage",
        image_dir_free_bytes=50 * 1024**3,
        block_devices=[
            {"path": "/dev/loop0", "size": 2 * 1024**3, "type": "loop", "fstype": "", "mountpoint": ""}
        ],
    )


def refused(call, exc_type=ServiceError) -> ServiceError:
    """Run a service call that must be refused: one refused audit row, no operation."""
    with pytest.raises(exc_type) as info:
        call()
    assert Operation.objects.count() == 0
    events = list(AuditEvent.objects.all())
    assert len(events) == 1, events
    assert events[0].result == "refused" and events[0].message == info.value.message
    return info.value


def pool(admin, host, **kwargs):
    kwargs.setdefault("name", "fast")
    kwargs.setdefault("kind", "btrfs")
    return lambda: services.create_pool(actor=admin, ctx=CTX, host=host, **kwargs)


def domain_with_device(host, device: str, name: str = "dom1"):
    """A libvirt domain row (as the agent's sync stores it) whose XML gives it ``device``."""
    from containers.libvirt.domain_xml import DomainSpec, build_domain_xml
    from containers.models import Container

    xml = build_domain_xml(DomainSpec(name, 64, 1, "/bin/sh", "/srv/r", mac="00:16:3e:00:00:01"))
    disk = f"<disk type='block' device='disk'><source dev='{device}'/><target dev='vdb' bus='virtio'/></disk>"
    return Container.objects.create(
        host=host,
        name=name,
        backend="libvirt",
        state="RUNNING",
        domain_xml=xml.replace("</devices>", disk + "</devices>"),
    )
