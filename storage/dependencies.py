"""What depends on a loop device or a pool, and the order in which to take it apart.

Read from the inventory (the web process never asks a host); the agent checks again on
the host before it destroys anything.
"""

from __future__ import annotations

from containers.models import Container, attached_block_devices
from storage.drivers.pool import Dependant, pool_type
from storage.models import LoopDevice, Pool

__all__ = ["Dependant", "loop_device_dependants", "loop_device_holders", "pool_dependants", "refusal_message"]


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
    out += pool_type(pool.kind).blockers(pool, {c.rootfs for c in containers})
    return _unique(out)


def loop_device_dependants(loop: LoopDevice) -> list[Dependant]:
    """Pools made on the device (a mounted btrfs, an LVM PV), any other mount of it, and a libvirt
    domain it is attached to (as its stored XML says)."""
    out: list[Dependant] = []
    pools = list(Pool.objects.filter(host=loop.host, source__in=[loop.device, loop.backing_file]))
    for pool in pools:
        out += pool_dependants(pool)
    return _unique(out + loop_device_holders(loop, pools, attached_block_devices(loop.host)))


def loop_device_holders(loop: LoopDevice, pools: list[Pool], domains: dict[str, str]) -> list[Dependant]:
    """What holds the device directly (its pools, a mount, a physical volume, a libvirt domain),
    read from ``pools`` (any of the host's) and ``domains`` (the host's
    ``containers.models.attached_block_devices``), already fetched, without a query: what lives on
    those pools is not listed (the storage page names the pool; the detach page lists everything)."""
    out: list[Dependant] = []
    domain = domains.get(loop.device)
    if domain:
        out.append(
            Dependant("domain", domain, f"detach {loop.device} from the domain {domain} (virsh detach-disk)")
        )
    pools = [p for p in pools if p.host_id == loop.host_id and p.source in (loop.device, loop.backing_file)]
    for pool in pools:
        out.append(Dependant("pool", pool.name, f"destroy the {pool_type(pool.kind).noun} {pool.name}"))
    pool_mounts = {p.mountpoint for p in pools}
    if loop.mountpoint and loop.mountpoint not in pool_mounts:
        out.append(Dependant("mount", loop.mountpoint, f"umount {loop.mountpoint}"))
    # A physical volume no pool of the console made (a pool's own is taken apart with it).
    if loop.fstype == "LVM2_member" and not any(pool_type(p.kind).signature == loop.fstype for p in pools):
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
