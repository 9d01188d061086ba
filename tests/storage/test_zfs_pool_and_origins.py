"""At the command boundary, with outputs recorded in the VM tier (tests/storage/fixtures/vm_*):
the ZFS pool page's reading and the origin links of LVM and ZFS snapshot containers.

The same code runs against live LVM/ZFS in tests/vm/test_lxc_block_stores_vm.py; these tests
pin what it does with the recorded outputs, and that a malformed rootfs never reaches an argv.
"""

from __future__ import annotations

import pytest

from console.runner import CommandError, CommandResult
from containers.choices import Backend
from containers.inventory import _link_snapshot_origin, block_store_origin
from containers.models import Container
from storage.choices import PoolKind
from storage.dependencies import pool_dependants
from storage.inventory import refresh_pool
from storage.models import Pool
from tests.scripted_runner import ScriptedRunner
from tests.storage.conftest import fixture_text


def replay(answers: dict[tuple[str, ...], str]):
    """The script: each argv answered with what the real command printed in the VM; any other fails."""

    def script(argv: list[str]) -> CommandResult:
        if tuple(argv) not in answers:
            raise CommandError(f"unexpected command {argv}", argv=argv)
        return CommandResult(argv, 0, answers[tuple(argv)], "", 0.01)

    return script


ZFS_ANSWERS = {
    ("zpool", "list"): fixture_text("vm_zpool_list.txt"),
    ("zpool", "status"): fixture_text("vm_zpool_status.txt"),
    ("zfs", "list", "-t", "all", "-r", "lxc"): fixture_text("vm_zfs_list_all.txt"),
    ("zfs", "list", "-H", "-t", "all", "-o", "name,origin", "-r", "lxc"): fixture_text(
        "vm_zfs_list_origins.txt"
    ),
}


@pytest.fixture
def zfs_host(host):
    host.capabilities = {**host.capabilities, "zfs": {"available": True, "kernel": True}}
    host.save()
    return host


def test_zfs_pool_reading_and_page(client, admin, zfs_host):
    pool = Pool.objects.create(
        host=zfs_host, name="lxc", kind=PoolKind.ZFS, zpool="lxc", lxc_path="/var/lib/lxc"
    )
    refresh_pool(pool, ScriptedRunner(replay(ZFS_ANSWERS)))
    pool.refresh_from_db()
    assert pool.health == "ok"
    # zpool list: SIZE 288M, ALLOC 2.29M.
    assert pool.capacity_bytes == 288 * 1024**2 and 2 * 1024**2 < pool.used_bytes < 3 * 1024**2
    kinds = {d["name"]: (d["snapshot"], d["origin"], d["mountpoint"]) for d in pool.details["datasets"]}
    assert kinds == {
        "lxc": (False, "", "/lxc"),
        "lxc/z1": (False, "", "/var/lib/lxc/z1/rootfs"),
        "lxc/z1@z1snap": (True, "", "-"),
        "lxc/z1snap": (False, "lxc/z1@z1snap", "/var/lib/lxc/z1snap/rootfs"),
    }
    assert [r["name"] for r in pool.details["status"][0]["config"]] == ["lxc", "/tmp/p.img"]

    # What depends on the pool, in the order that takes it apart: clone, snapshot, dataset.
    steps = [d.step for d in pool_dependants(pool)]
    assert steps == ["zfs destroy lxc/z1snap", "zfs destroy lxc/z1@z1snap", "zfs destroy lxc/z1"], steps

    client.force_login(admin)
    page = client.get(f"/storage/pools/{pool.pk}/").content.decode()
    assert "clone of <code>lxc/z1@z1snap</code>" in page
    assert "<code>/var/lib/lxc/z1snap/rootfs</code>" in page and "/tmp/p.img" in page


def test_zfs_pool_missing_and_zfs_absent(zfs_host):
    pool = Pool.objects.create(
        host=zfs_host, name="other", kind=PoolKind.ZFS, zpool="other", lxc_path="/p/other"
    )
    refresh_pool(pool, ScriptedRunner(replay(ZFS_ANSWERS)))
    assert pool.health == "zpool other not found" and pool.capacity_bytes is None
    zfs_host.capabilities = {"zfs": {"available": False, "kernel": False}}
    zfs_host.save()
    runner = ScriptedRunner(replay({}))
    pool = Pool.objects.select_related("host").get(pk=pool.pk)
    refresh_pool(pool, runner)
    assert pool.health == "ZFS is not available on this host" and runner.argvs == []


LVS = ("lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o")


def lvs_answers() -> dict[tuple[str, ...], str]:
    fields = "lv_name,vg_name,lv_attr,lv_size,pool_lv,origin,data_percent"
    return {(*LVS, fields, "lxc"): fixture_text("vm_lvs_snapshot.json")}


def test_origin_of_lvm_and_zfs_snapshots_from_the_store():
    assert block_store_origin("lvm:/dev/lxc/c1snap", ScriptedRunner(replay(lvs_answers()))) == [
        "lvm:/dev/lxc/c1",
        "/dev/lxc/c1",
    ]
    # the origin itself
    assert block_store_origin("lvm:/dev/lxc/c1", ScriptedRunner(replay(lvs_answers()))) == []
    origins = ("zfs", "list", "-H", "-t", "all", "-o", "name,origin", "-r", "lxc")
    zfs = ScriptedRunner(replay({origins: fixture_text("vm_zfs_list_origins.txt")}))
    assert block_store_origin("zfs:lxc/z1snap", zfs) == ["zfs:lxc/z1"]
    assert block_store_origin("zfs:lxc/z1", zfs) == []  # the origin itself
    # One listing per volume group or pool for a whole sync, however many containers ask.
    cache: dict = {}
    both = ScriptedRunner(replay({**lvs_answers(), origins: fixture_text("vm_zfs_list_origins.txt")}))
    for rootfs in ("lvm:/dev/lxc/c1snap", "lvm:/dev/lxc/c1", "zfs:lxc/z1snap", "zfs:lxc/z1"):
        block_store_origin(rootfs, both, cache)
    assert [c[0] for c in both.argvs] == ["lvs", "zfs"], both.argvs


@pytest.mark.parametrize(
    "rootfs",
    [
        "lvm:/dev/lxc/../etc",
        "lvm:/dev/lxc/a b",
        "lvm:/dev/-x/c1",
        "lvm:/etc/passwd",
        "zfs:lxc/a b",
        "zfs:-o/x",
        "zfs:lxc/a;rm",
        "dir:/var/lib/lxc/a/rootfs",
        "btrfs:/p/a/rootfs",
    ],
)
def test_a_malformed_rootfs_never_reaches_a_command(rootfs):
    runner = ScriptedRunner(replay({}))
    assert block_store_origin(rootfs, runner) == []
    assert runner.argvs == []


def test_the_agent_links_a_snapshot_made_outside_the_console(host):
    origin = Container.objects.create(
        host=host, backend=Backend.LXC, lxc_path="/p", name="c1", rootfs="lvm:/dev/lxc/c1", store="lvm"
    )
    snap = Container.objects.create(
        host=host,
        backend=Backend.LXC,
        lxc_path="/p",
        name="c1snap",
        rootfs="lvm:/dev/lxc/c1snap",
        store="lvm",
    )
    _link_snapshot_origin(snap, ScriptedRunner(replay(lvs_answers())))
    snap.refresh_from_db()
    assert (snap.origin_id, snap.origin_kind) == (origin.pk, "snapshot")
    # Once linked, the store is not asked again at every sync.
    runner = ScriptedRunner(replay({}))
    _link_snapshot_origin(snap, runner)
    assert runner.argvs == []
    # A store that cannot answer leaves the row as it was.
    other = Container.objects.create(
        host=host, backend=Backend.LXC, lxc_path="/p", name="c2", rootfs="lvm:/dev/lxc/c2", store="lvm"
    )
    _link_snapshot_origin(other, ScriptedRunner(replay({})))
    other.refresh_from_db()
    assert other.origin_id is None


def test_a_containers_own_volume_or_dataset_is_not_a_separate_step(zfs_host):
    """lxc-destroy removes a container's dataset (and the snapshot its clone came from) or its
    logical volume: the safe order lists the containers, and only what no container owns."""
    pool = Pool.objects.create(
        host=zfs_host, name="lxc", kind=PoolKind.ZFS, zpool="lxc", lxc_path="/var/lib/lxc"
    )
    refresh_pool(pool, ScriptedRunner(replay(ZFS_ANSWERS)))
    z1 = Container.objects.create(
        host=zfs_host,
        backend=Backend.LXC,
        lxc_path="/var/lib/lxc",
        name="z1",
        rootfs="zfs:lxc/z1",
        store="zfs",
    )
    Container.objects.create(
        host=zfs_host, backend=Backend.LXC, lxc_path="/var/lib/lxc", name="z1snap", rootfs="zfs:lxc/z1snap",
        store="zfs", origin=z1, origin_kind="snapshot",
    )  # fmt: skip
    steps = [d.step for d in pool_dependants(pool)]
    assert steps == [
        "destroy the snapshot z1snap (lxc-destroy -n z1snap)",
        "destroy the container z1 (lxc-destroy -n z1)",
    ]

    lvm = Pool.objects.create(
        host=zfs_host,
        name="vg",
        kind=PoolKind.LVM,
        vg_name="lxc",
        lxc_path="/p/vg",
        details={
            "lvs": [
                {"name": "c1", "vg": "lxc", "attr": "owi-a-s---"},
                {"name": "other", "vg": "lxc", "attr": "-wi-a-----"},
            ]
        },
    )
    Container.objects.create(
        host=zfs_host, backend=Backend.LXC, lxc_path="/p/vg", name="c1", rootfs="lvm:/dev/lxc/c1", store="lvm"
    )
    steps = [d.step for d in pool_dependants(lvm)]
    assert steps == ["destroy the container c1 (lxc-destroy -n c1)", "lvremove lxc/other"], steps
