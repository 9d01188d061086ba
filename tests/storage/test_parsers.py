"""Parsers fed with real outputs: the seed chapter's (verbatim) and ones captured on this kind of host."""

from __future__ import annotations

import pytest

from storage.drivers import btrfs, loop, lvm, zfs
from tests.storage.conftest import fixture_text

G = 1024**3
M = 1024**2


# --- LVM: the seed chapter ---------------------------------------------------------------------


def test_seed_pvs():
    (pv,) = lvm.parse_pvs_table(fixture_text("seed_pvs.txt"))
    assert (pv.name, pv.vg, pv.fmt, pv.attr) == ("/dev/xvdb1", "lxc", "lvm2", "a--")
    assert (pv.size, pv.free) == (75 * G, 65 * G)


def test_seed_vgs():
    (vg,) = lvm.parse_vgs_table(fixture_text("seed_vgs.txt"))
    assert (vg.name, vg.pv_count, vg.lv_count, vg.snap_count, vg.attr) == ("lxc", 1, 1, 0, "wz--n-")
    assert (vg.size, vg.free) == (75 * G, 65 * G)


def test_seed_lvs_plain_volumes():
    (one,) = lvm.parse_lvs_table(fixture_text("seed_lvs_one.txt"))
    assert (one.name, one.vg, one.attr, one.size, one.origin) == (
        "lvm_container",
        "lxc",
        "-wi-a----",
        10 * G,
        "",
    )
    two = lvm.parse_lvs_table(fixture_text("seed_lvs_two.txt"))
    assert [(lv.name, lv.size, lv.attr[4]) for lv in two] == [
        ("lvm_container", 10 * G, "a"),
        ("lvm_container_2", 5 * G, "a"),
    ]
    assert two[0].attr[5] == "o"  # open: the running container's volume


def test_seed_lvs_snapshot_has_origin_and_data_percent():
    lvs = {lv.name: lv for lv in lvm.parse_lvs_table(fixture_text("seed_lvs_snapshot_and_copy.txt"))}
    snap = lvs["container_2_copy"]
    assert snap.is_snapshot and snap.origin == "lvm_container_2" and snap.data_percent == 0.11
    assert snap.size == 5 * G
    full = lvs["container_2_hard"]
    assert not full.is_snapshot and full.origin == "" and full.data_percent is None
    assert lvs["lvm_container_2"].is_origin


def test_seed_lvs_snapshot_gives_safe_destroy_order():
    lvs = lvm.parse_lvs_table(fixture_text("seed_lvs_snapshot.txt"))
    deps = lvm.vg_dependants("lxc", lvs)
    assert deps.snapshots == ["lxc/container_2_copy"]
    assert deps.order == [
        "lvremove lxc/container_2_copy",  # the snapshot before its origin
        "lvremove lxc/lvm_container",
        "lvremove lxc/lvm_container_2",
    ]


def test_seed_lvdisplay():
    blocks = lvm.parse_lvdisplay(fixture_text("seed_lvdisplay.txt"))
    assert [b.path for b in blocks] == ["/dev/lxc/lvm_container", "/dev/lxc/lvm_container_2"]
    assert [b.name for b in blocks] == ["lvm_container", "lvm_container_2"]
    assert [b.vg for b in blocks] == ["lxc", "lxc"]
    assert [b.size for b in blocks] == [10 * G, 5 * G]
    assert [b.open_count for b in blocks] == [1, 0]
    assert blocks[0].fields["LV UUID"] == "oBiCEC-mHE7-FHGY-ikUI-tg10-rouD-NBWHVt"
    assert blocks[1].fields["LV Creation host, time"] == "ubuntu, 2016-09-13 18:35:52 +0000"
    assert blocks[1].fields["Block device"] == "252:1"
    assert blocks[0].fields["Current LE"] == "2560"


# --- LVM: captured on this host (pvcreate + vgcreate on a loop device) --------------------------


def test_host_pvs_vgs_tables_and_json_agree():
    table_pv = lvm.parse_pvs_table(fixture_text("host_pvs.txt"))
    json_pv = lvm.parse_pvs_json(fixture_text("host_pvs.json"))
    assert [(p.name, p.vg, p.attr) for p in table_pv] == [("/dev/loop0", "lxc", "a--")]
    assert json_pv[0].size == 310378496 == json_pv[0].free
    assert table_pv[0].size == 296 * M == json_pv[0].size
    table_vg = lvm.parse_vgs_table(fixture_text("host_vgs.txt"))
    json_vg = lvm.parse_vgs_json(fixture_text("host_vgs.json"))
    assert (json_vg[0].name, json_vg[0].lv_count, json_vg[0].attr) == ("lxc", 0, "wz--n-")
    assert table_vg[0].size == json_vg[0].size == 310378496
    assert lvm.parse_lvs_json(fixture_text("host_lvs_empty.json")) == []


def test_pv_without_volume_group_in_table():
    text = "  PV         VG Fmt  Attr PSize   PFree  \n  /dev/loop0    lvm2 ---  300.00m 300.00m\n"
    (pv,) = lvm.parse_pvs_table(text)
    assert pv.vg == "" and pv.fmt == "lvm2" and pv.size == 300 * M


@pytest.mark.parametrize(
    ("text", "size"),
    [("75.00g", 75 * G), ("<296.00m", 296 * M), ("10.00 GiB", 10 * G), ("310378496", 310378496), ("0", 0)],
)
def test_lvm_sizes(text, size):
    assert lvm.parse_lvm_size(text) == size


# --- ZFS: the seed chapter ---------------------------------------------------------------------


def test_seed_zpool_list():
    (pool,) = zfs.parse_zpool_list(fixture_text("seed_zpool_list.txt"))
    assert pool.name == "lxc" and pool.health == "ONLINE"
    assert pool.size == int(74.5 * G) and pool.alloc == int(51.5 * 1024) and pool.free == int(74.5 * G)
    assert pool.fields["CAP"] == "0%" and pool.fields["DEDUP"] == "1.00x"


def test_seed_zpool_status():
    (status,) = zfs.parse_zpool_status(fixture_text("seed_zpool_status.txt"))
    assert (status.pool, status.state, status.scan, status.errors) == (
        "lxc",
        "ONLINE",
        "none requested",
        "No known data errors",
    )
    assert [(c["name"], c["state"], c["role"]) for c in status.config] == [
        ("lxc", "ONLINE", "pool"),
        ("xvdb", "ONLINE", "vdev"),
    ]
    assert status.config[1]["cksum"] == "0"


def test_seed_zfs_list():
    (ds,) = zfs.parse_zfs_list(fixture_text("seed_zfs_list.txt"))
    assert (ds.name, ds.mountpoint) == ("lxc", "/lxc")
    assert ds.used == int(56.5 * 1024) and ds.avail == int(72.2 * G) and ds.refer == 19 * 1024


def test_seed_zfs_destroy_has_children_gives_dependants_and_safe_order():
    blocked = zfs.parse_destroy_error(fixture_text("seed_zfs_destroy_has_children.txt"))
    assert blocked is not None
    assert blocked.dataset == "lxc/zfs_container"
    # lxc-destroy's own lines after the list are not datasets.
    assert blocked.children == ["lxc/zfs_container@zfs_cow_clone"]
    assert blocked.snapshots == ["lxc/zfs_container@zfs_cow_clone"]
    assert blocked.safe_order == [
        "zfs destroy lxc/zfs_container@zfs_cow_clone",
        "zfs destroy lxc/zfs_container",
    ]
    assert "zfs promote" in blocked.alternative


def test_zfs_destroy_error_absent_in_other_output():
    assert zfs.parse_destroy_error("Destroyed container zfs_cow_clone\n") is None


# --- losetup, blkid, btrfs --------------------------------------------------------------------


def test_seed_losetup_all():
    loops = loop.parse_losetup_all(fixture_text("seed_losetup_a.txt"))
    assert [(i.device, i.backing_file) for i in loops] == [
        ("/dev/loop0", "/root/xvdz.img"),
        ("/dev/loop1", "/block_device"),
    ]


def test_host_losetup_json_and_all_agree():
    as_json = loop.parse_losetup_json(fixture_text("host_losetup_list.json"))
    as_all = loop.parse_losetup_all(fixture_text("host_losetup_a.txt"))
    assert [i.device for i in as_json] == ["/dev/loop0", "/dev/loop1"]  # sorted by number
    assert [(i.device, i.backing_file) for i in as_json] == [(i.device, i.backing_file) for i in as_all]
    assert as_json[0].backing_file.endswith("/a.img") and not as_json[0].read_only


def test_host_blkid():
    assert loop.parse_blkid_export(fixture_text("host_blkid_btrfs.txt"))["TYPE"] == "btrfs"
    lvm_member = loop.parse_blkid_export(fixture_text("host_blkid_lvm2_member.txt"))
    assert lvm_member["TYPE"] == "LVM2_member" and lvm_member["VERSION"] == "LVM2 001"


def test_seed_btrfs_subvolume_list():
    # The chapter's output after lxc-copy -s on a btrfs store.
    subs = btrfs.parse_subvolume_list(fixture_text("seed_btrfs_subvolume_list.txt"))
    assert [(s.id, s.path) for s in subs] == [
        (257, "btrfs_container/rootfs"),
        (259, "btrfs_cow_clone/rootfs"),
    ]


def test_host_btrfs_outputs():
    subs = btrfs.parse_subvolume_list(fixture_text("host_btrfs_subvolume_list.txt"))
    assert [s.path for s in subs] == ["btrfs_container", "btrfs_cow_clone"]
    df = btrfs.parse_filesystem_df(fixture_text("host_btrfs_filesystem_df.txt"))
    assert {(r["type"], r["profile"]) for r in df} >= {("Data", "single"), ("Metadata", "DUP")}
    assert next(r for r in df if r["type"] == "Metadata")["used"] == 163840
    usage = btrfs.parse_filesystem_usage(fixture_text("host_btrfs_filesystem_usage.txt"))
    assert usage["size"] == 419430400 and usage["used"] == 360448 and usage["free"] == 335544320


def test_seed_btrfs_df_human_units():
    rows = btrfs.parse_filesystem_df(fixture_text("seed_btrfs_filesystem_df.txt"))
    assert [(r["type"], r["profile"]) for r in rows] == [
        ("Data", "single"),
        ("System", "DUP"),
        ("System", "single"),
        ("Metadata", "DUP"),
        ("Metadata", "single"),
    ]
    assert rows[0]["total"] == int(1.01 * G) and rows[0]["used"] == int(309.14 * M)
    assert rows[1]["used"] == 16 * 1024 and rows[2]["used"] == 0
