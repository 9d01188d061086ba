"""The storage inventory lists partitions with their disk (lsblk's children), so the device
pickers offer a partitioned device by its partitions, never the whole disk: a real loop device
with an MBR partition table (written here byte by byte) whose partition ``partx --add`` makes (it
reads the table itself: this host's kernel has no partition parsers)."""

from __future__ import annotations

import os
import struct
import subprocess

import pytest

from storage.inventory import sync_host
from storage.models import HostStorage
from tests.hosttools import require_tool, wait_for

pytestmark = pytest.mark.host
SECTOR = 512


def mbr_with_one_partition(path, size: int) -> None:
    """One Linux partition (type 0x83) from sector 2048 to the end, as fdisk would write it."""
    first, count = 2048, size // SECTOR - 2048
    entry = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", first, count)
    with open(path, "r+b") as fh:
        fh.seek(446)
        fh.write(entry + b"\0" * 48 + b"\x55\xaa")


def test_a_partitioned_loop_device_is_offered_by_its_partition(storage_env, host):
    require_tool("losetup", "lsblk", "partx")
    image = storage_env / "parted.img"
    image.parent.mkdir(parents=True, exist_ok=True)
    size = 16 * 1024**2
    with open(image, "wb") as fh:
        fh.truncate(size)
    mbr_with_one_partition(image, size)
    device = subprocess.run(
        ["losetup", "--find", "--show", str(image)], capture_output=True, text=True, check=True
    ).stdout.strip()  # detached by storage_env's teardown (its backing file is under the root)
    partition = f"{device}p1"
    try:
        subprocess.run(["partx", "--add", device], check=True, capture_output=True, timeout=30)
        wait_for(lambda: os.path.exists(partition), 10, what=partition)
        sync_host(host)
        inventory = HostStorage.objects.get(host=host)
        listed = {d["path"]: d for d in inventory.block_devices}
        assert listed[partition]["parent"] == device and listed[partition]["type"] == "part"
        assert listed[partition]["size"] == size - 2048 * SECTOR
        assert "parent" not in listed[device]
        free = [d["path"] for d in inventory.free_block_devices()]
        assert partition in free and device not in free
    finally:
        subprocess.run(["partx", "--delete", device], capture_output=True, timeout=30)
