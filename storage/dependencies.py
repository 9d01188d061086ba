"""What depends on a loop device or a pool, and the order in which to take it apart.

Read from the inventory (the web process never asks a host); the agent checks again on
the host before it destroys anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from containers.models import Container
from storage.choices import PoolKind
from storage.models import LoopDevice, Pool


@dataclass(frozen=True)
class Dependant:
    # "pool", "mount", "physical volume", "container", "snapshot", "logical volume", "dataset", "clone"
    kind: str
    name: str
    step: str  # what to do with it first, in the seed's words


def _container_order(containers: list[Container]) -> list[Container]:
    """Deepest copies first: a snapshot must go before the container it was taken of."""
    by_pk = {c.pk: c for c in containers}

    def depth(c: Container) -> int:
        d, cursor = 0, c
        while cursor.origin_id in by_pk and d < 50:
            cursor, d = by_pk[cursor.origin_id], d + 1
        return d

    return sorted(containers, key=lambda c: (-depth(c), c.name))


def pool_dependants(pool: Pool) -> list[Dependant]:
    """Containers on the pool (snapshots first), logical volumes of its VG (snapshots first)."""
    out: list[Dependant] = []
    containers: list[Container] = []
    if pool.lxc_path:
        containers = list(Container.objects.filter(host=pool.host, lxc_path=pool.lxc_path))
        for c in _container_order(containers):
            kind = "snapshot" if c.origin_kind == "snapshot" else "container"
            stop = "stop and " if c.is_running else ""
            out.append(
                Dependant(kind, c.name, f"{stop}destroy the {kind} {c.name} (lxc-destroy -n {c.name})")
            )
    # A container's own volume or dataset (and its snapshots) goes with ``lxc-destroy``: not a step.
    rootfs = {c.rootfs for c in containers}
    if pool.kind == PoolKind.LVM:
        lvs = [
            lv
            for lv in pool.details.get("lvs", [])
            if lv.get("vg") == pool.vg_name and f"lvm:/dev/{pool.vg_name}/{lv.get('name')}" not in rootfs
        ]
        for lv in sorted(lvs, key=lambda lv: lv.get("attr", "")[:1] not in ("s", "S")):
            kind = "snapshot" if lv.get("attr", "")[:1] in ("s", "S") else "logical volume"
            out.append(
                Dependant(kind, f"{pool.vg_name}/{lv['name']}", f"lvremove {pool.vg_name}/{lv['name']}")
            )
    if pool.kind == PoolKind.ZFS:
        roots = {pool.name, pool.vg_name}
        rows = [d if isinstance(d, dict) else {"name": d} for d in pool.details.get("datasets", [])]

        def order(d: dict) -> tuple[int, int, str]:
            # Clones before the snapshots they come from, snapshots before their datasets,
            # children before parents.
            rank = 0 if d.get("origin") else 1 if "@" in d["name"] else 2
            return rank, -d["name"].count("/"), d["name"]

        owned = {r.removeprefix("zfs:") for r in rootfs if r.startswith("zfs:")}
        rows = [d for d in rows if d["name"].partition("@")[0] not in owned]
        for d in sorted((d for d in rows if d["name"] not in roots), key=order):
            kind = "clone" if d.get("origin") else "snapshot" if "@" in d["name"] else "dataset"
            out.append(Dependant(kind, d["name"], f"zfs destroy {d['name']}"))
    return _unique(out)


def loop_device_dependants(loop: LoopDevice) -> list[Dependant]:
    """Pools made on the device (a mounted btrfs, an LVM PV), or any other mount of it."""
    out: list[Dependant] = []
    pools = Pool.objects.filter(host=loop.host, source__in=[loop.device, loop.backing_file])
    for pool in pools:
        what = "the btrfs pool" if pool.kind == PoolKind.BTRFS else f"the {pool.get_kind_display()} pool"
        for dep in pool_dependants(pool):
            out.append(dep)
        out.append(Dependant("pool", pool.name, f"destroy {what} {pool.name}"))
    pool_mounts = {p.mountpoint for p in pools}
    if loop.mountpoint and loop.mountpoint not in pool_mounts:
        out.append(Dependant("mount", loop.mountpoint, f"umount {loop.mountpoint}"))
    if loop.fstype == "LVM2_member" and not any(p.kind == PoolKind.LVM for p in pools):
        out.append(
            Dependant(
                "physical volume", loop.device, f"vgremove its volume group, then pvremove {loop.device}"
            )
        )
    return _unique(out)


def _unique(items: list[Dependant]) -> list[Dependant]:
    seen, out = set(), []
    for d in items:
        if (d.kind, d.name) not in seen:
            seen.add((d.kind, d.name))
            out.append(d)
    return out


def refusal_message(what: str, dependants: list[Dependant]) -> str:
    names = ", ".join(f"{d.kind} {d.name}" for d in dependants)
    order = "; ".join(f"{i}. {d.step}" for i, d in enumerate(dependants, 1))
    return f"{what} cannot be removed: {names} depend on it. Safe order: {order}; then {what}"
