"""LVM for real, in a VM: the console's LVM driver, parsers and dependency checks on live output.

This host kernel has no device-mapper; Debian's kernel in QEMU (software emulation) has. The
driver decides every argv and parses every output; the VM (tests/vm/transport.py) only executes.
"""

from __future__ import annotations

import pytest

from console.errors import ServiceError
from console.models import Host, Operation
from console.runner import CommandError
from storage.choices import PoolKind
from storage.dependencies import pool_dependants, refusal_message
from storage.drivers.lvm import (
    LVM_ENV,
    as_rows,
    parse_lvdisplay,
    parse_lvs_table,
    parse_pvs_table,
    parse_vgs_table,
    vg_dependants,
)
from storage.handlers import pool_destroy
from storage.models import Pool

pytestmark = [pytest.mark.vm, pytest.mark.slow]

MiB = 1024**2
VG = "lxc"  # the console's default volume group name
DEVICE = "/dev/vda"


def names(lvs) -> list[str]:
    return sorted(lv.name for lv in lvs)


def clean_disk(lvm) -> None:
    """Leave /dev/vda blank for the next test, whatever state a failed test left behind."""
    if any(vg.name == VG for vg in lvm.vgs()):
        lvs = lvm.lvs(VG)
        for lv in [*[lv for lv in lvs if lv.is_snapshot], *[lv for lv in lvs if not lv.is_snapshot]]:
            lvm.lvremove(VG, lv.name)
        lvm.vgremove(VG)
    if any(pv.name == DEVICE for pv in lvm.pvs()):
        lvm.pvremove(DEVICE)


def test_transport_runs_argv_and_reports_like_the_local_runner(vm):
    # Arguments travel as argv (shlex.join), not as shell text: nothing below is interpreted.
    odd = ["a b", "it's", '"q"', "$HOME", "`id`", "x;y", "*", ""]
    result = vm.run(["printf", "<%s>\\n", *odd])
    assert result.stdout == "".join(f"<{a}>\n" for a in odd), result.stdout
    assert vm.run(["printf", "%s", "no newline"]).stdout == "no newline"
    # stdout and stderr apart, the exit status kept, a CommandError like the local runner's.
    result = vm.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    with pytest.raises(CommandError) as info:
        vm.run(["ls", "/nonexistent"], error_message="could not list")
    assert info.value.message == "could not list" and info.value.returncode != 0
    assert "/nonexistent" in info.value.stderr
    assert vm.run(["sh", "-c", "echo $LVM_SUPPRESS_FD_WARNINGS"], env=LVM_ENV).stdout == "1\n"
    # stdin is /dev/null: a command that asks a question gets EOF, not the next command.
    assert vm.run(["sh", "-c", "read x || echo eof"]).stdout == "eof\n"


@pytest.mark.django_db
def test_lvm_pool_container_volume_snapshot_and_safe_destroy(vm, lvm):
    clean_disk(lvm)
    try:
        # The pool: a PV on the whole device (no partition) and the volume group.
        lvm.pvcreate(DEVICE)
        lvm.vgcreate(VG, [DEVICE])
        [pv] = [pv for pv in lvm.pvs() if pv.name == DEVICE]
        assert (pv.vg, pv.fmt) == (VG, "lvm2") and 1000 * MiB < pv.size <= 1024 * MiB, pv
        [vg] = [vg for vg in lvm.vgs() if vg.name == VG]
        assert (vg.pv_count, vg.lv_count, vg.snap_count) == (1, 0, 0) and vg.free == vg.size, vg

        # Bad input is refused by LVM with a clear message, and nothing changes.
        with pytest.raises(CommandError) as info:
            lvm.vgcreate(VG, [DEVICE])
        assert info.value.message == f"vgcreate could not create {VG}"
        with pytest.raises(CommandError) as info:
            lvm.lvcreate(VG, "too_big", 2 * 1024**3)
        assert "insufficient free space" in info.value.stderr, info.value.stderr
        assert lvm.lvs(VG) == []

        # A volume for a container, and the seed's snapshot of it (lvcreate -s).
        lvm.lvcreate(VG, "lvm_container", 100 * MiB)
        vm.run(lvm.snapshot_argv(VG, "lvm_container", "container_copy", 50 * MiB), env=LVM_ENV)

        # The seed's picture, read with the console's own parsers (JSON, as the agent does).
        lvs = {lv.name: lv for lv in lvm.lvs(VG)}
        assert sorted(lvs) == ["container_copy", "lvm_container"], lvs
        origin, snap = lvs["lvm_container"], lvs["container_copy"]
        assert origin.attr.startswith("owi-") and origin.is_origin and origin.size == 100 * MiB, origin
        assert snap.attr.startswith("swi-") and snap.is_snapshot, snap
        assert snap.origin == "lvm_container" and snap.data_percent == 0.0, snap
        assert snap.size == 52 * MiB, "LVM rounds a 50M snapshot up to 13 extents of 4 MiB"
        [vg] = [vg for vg in lvm.vgs() if vg.name == VG]
        assert (vg.lv_count, vg.snap_count, vg.free) == (2, 1, vg.size - 152 * MiB), vg

        # The human tables and lvdisplay, as the seed chapter prints them.
        table = {lv.name: lv for lv in parse_lvs_table(vm.run(["lvs"], env=LVM_ENV).stdout)}
        assert (
            table["container_copy"].attr == "swi-a-s---" and table["container_copy"].origin == "lvm_container"
        )
        assert table["container_copy"].size == 52 * MiB and table["container_copy"].data_percent == 0.0
        assert table["lvm_container"].attr == "owi-a-s---" and table["lvm_container"].size == 100 * MiB
        [vg_row] = parse_vgs_table(vm.run(["vgs"], env=LVM_ENV).stdout)
        assert (vg_row.name, vg_row.lv_count, vg_row.snap_count) == (VG, 2, 1), vg_row
        [pv_row] = parse_pvs_table(vm.run(["pvs"], env=LVM_ENV).stdout)
        assert (pv_row.name, pv_row.vg, pv_row.fmt) == (DEVICE, VG, "lvm2"), pv_row
        shown = {d.name: d for d in parse_lvdisplay(vm.run(["lvdisplay"], env=LVM_ENV).stdout)}
        assert shown["lvm_container"].path == "/dev/lxc/lvm_container" and shown["lvm_container"].vg == VG
        assert shown["container_copy"].fields["COW-table size"] == "52.00 MiB", shown["container_copy"].fields
        assert "lvm_container" in shown["container_copy"].fields["LV snapshot status"]

        # The dependency check: the web refusal (from the inventory the agent writes) ...
        pool = Pool(
            name="vg-lxc",
            kind=PoolKind.LVM,
            vg_name=VG,
            source=DEVICE,
            details={"lvs": as_rows(list(lvs.values()))},
        )
        dependants = pool_dependants(pool)
        assert [(d.kind, d.name) for d in dependants] == [
            ("snapshot", "lxc/container_copy"),
            ("logical volume", "lxc/lvm_container"),
        ], dependants
        message = refusal_message("pool vg-lxc", dependants)
        assert "Safe order: 1. lvremove lxc/container_copy; 2. lvremove lxc/lvm_container" in message, message
        # ... and the agent's own check before vgremove, on live lvs output: refused, nothing done.
        deps = vg_dependants(VG, lvm.lvs(VG))
        assert (deps.snapshots, deps.volumes) == (["lxc/container_copy"], ["lxc/lvm_container"]), deps
        host = Host.objects.create(slug="vm", name="VM")
        pool.host = host
        pool.save()
        with pytest.raises(ServiceError) as refused:
            pool_destroy(Operation(host=host, kind="storage.pool.destroy", params={"pool_id": pool.pk}), vm)
        assert "safe order: lvremove lxc/container_copy; lvremove lxc/lvm_container" in str(refused.value)
        assert names(lvm.lvs(VG)) == ["container_copy", "lvm_container"], "the refusal removed something"
        # LVM itself refuses a VG with volumes when nobody answers yes (the driver never passes -f).
        with pytest.raises(CommandError) as info:
            lvm.vgremove(VG)
        assert 'Volume group "lxc" not removed' in info.value.stderr, info.value.stderr

        # The safe order: the snapshot first, then its origin, then the VG and the PV.
        lvm.lvremove(VG, "container_copy")
        after = lvm.lvs(VG)
        assert names(after) == ["lvm_container"] and after[0].attr.startswith("-wi-"), after
        lvm.lvremove(VG, "lvm_container")
        assert lvm.lvs(VG) == []
        lvm.vgremove(VG)
        lvm.pvremove(DEVICE)
        assert [vg.name for vg in lvm.vgs()] == [] and [pv.name for pv in lvm.pvs()] == []
    finally:
        clean_disk(lvm)


def test_driver_refuses_to_remove_an_origin_that_has_snapshots(vm, lvm):
    clean_disk(lvm)
    refused = None
    try:
        lvm.pvcreate(DEVICE)
        lvm.vgcreate(VG, [DEVICE])
        lvm.lvcreate(VG, "lvm_container", 100 * MiB)
        vm.run(lvm.snapshot_argv(VG, "lvm_container", "container_copy", 50 * MiB), env=LVM_ENV)
        try:
            lvm.lvremove(VG, "lvm_container")
        except CommandError as exc:
            refused = exc
        left = names(lvm.lvs(VG))
    finally:
        clean_disk(lvm)
    assert refused is not None and "container_copy" in refused.message, (
        f"lvremove of the origin was not refused; logical volumes left: {left}"
    )
    assert left == ["container_copy", "lvm_container"], left
