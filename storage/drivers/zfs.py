"""ZFS pools: ``zpool create/list/status/destroy``, ``zfs list/destroy/promote`` argv and parsers.

This host kernel has no ZFS module, so the driver is tested by the exact argv it runs
and by parsing the seed chapter's real outputs, including the refusal
``cannot destroy 'lxc/zfs_container': filesystem has children``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from console.errors import Conflict, InvalidInput, ServiceError
from console.runner import CommandError, Runner
from storage.drivers.pool import Dependant, PoolType, Progress, Reading, register

if TYPE_CHECKING:
    from console.models import Host
    from storage.models import Pool

_ZFS_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}


def parse_zfs_size(value: str) -> int | None:
    """``74.5G``, ``51.5K``, ``19K``, ``0``, ``-`` (None)."""
    text = value.strip()
    if text in ("-", ""):
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([BKMGTP]?)", text)
    if not m:
        raise ValueError(f"not a ZFS size: {value!r}")
    return int(float(m.group(1)) * _ZFS_UNITS[m.group(2)])


def _table(text: str) -> list[dict[str, str]]:
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    header = lines[0]
    return [dict(zip(header, cells, strict=False)) for cells in lines[1:] if len(cells) == len(header)]


@dataclass
class Zpool:
    name: str
    size: int | None
    alloc: int | None
    free: int | None
    health: str
    fields: dict[str, str] = field(default_factory=dict)


def parse_zpool_list(text: str) -> list[Zpool]:
    """``zpool list``: ``NAME SIZE ALLOC FREE EXPANDSZ FRAG CAP DEDUP HEALTH ALTROOT``."""
    return [
        Zpool(
            r["NAME"],
            parse_zfs_size(r["SIZE"]),
            parse_zfs_size(r["ALLOC"]),
            parse_zfs_size(r["FREE"]),
            r.get("HEALTH", ""),
            r,
        )
        for r in _table(text)
    ]


@dataclass
class ZpoolStatus:
    pool: str
    state: str
    scan: str = ""
    errors: str = ""
    # (name, state, read, write, cksum, depth) of the config tree: the pool, then its vdevs.
    config: list[dict] = field(default_factory=list)


def parse_zpool_status(text: str) -> list[ZpoolStatus]:
    """``zpool status`` (also with the seed's collapsed indentation: the first config row is the pool)."""
    out: list[ZpoolStatus] = []
    in_config = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        if sep and key in ("pool", "state", "scan", "errors", "config", "status", "action", "see"):
            in_config = key == "config"
            if key == "pool":
                out.append(ZpoolStatus(pool=value.strip(), state=""))
            elif out and key in ("state", "scan", "errors"):
                setattr(out[-1], key, value.strip())
            continue
        if in_config and out:
            cells = line.split()
            if cells[0] == "NAME":
                continue
            indent = len(raw) - len(raw.lstrip())
            out[-1].config.append(
                {
                    "name": cells[0],
                    "state": cells[1] if len(cells) > 1 else "",
                    "read": cells[2] if len(cells) > 2 else "",
                    "write": cells[3] if len(cells) > 3 else "",
                    "cksum": cells[4] if len(cells) > 4 else "",
                    "role": "pool" if cells[0] == out[-1].pool else "vdev",
                    "indent": indent,
                }
            )
    return out


@dataclass
class Dataset:
    name: str
    used: int | None
    avail: int | None
    refer: int | None
    mountpoint: str


def parse_zfs_list(text: str) -> list[Dataset]:
    """``zfs list``: ``NAME USED AVAIL REFER MOUNTPOINT``."""
    return [
        Dataset(
            r["NAME"],
            parse_zfs_size(r["USED"]),
            parse_zfs_size(r["AVAIL"]),
            parse_zfs_size(r["REFER"]),
            r["MOUNTPOINT"],
        )
        for r in _table(text)
    ]


@dataclass
class DestroyBlocked:
    """``zfs destroy`` refused: the dataset has children (snapshots, and clones of them)."""

    dataset: str
    children: list[str]

    @property
    def snapshots(self) -> list[str]:
        return [c for c in self.children if "@" in c]

    @property
    def safe_order(self) -> list[str]:
        """Commands that remove the dependants first, then the dataset itself."""
        steps = [f"zfs destroy {child}" for child in self.children]
        return [*steps, f"zfs destroy {self.dataset}"]

    @property
    def alternative(self) -> str:
        """Keep the clone: ``zfs promote`` makes it independent of the origin's snapshot."""
        return "or keep the clone: zfs promote <clone dataset>, then destroy the origin"


_HAS_CHILDREN = re.compile(r"cannot destroy '(?P<ds>[^']+)': filesystem has children")
_HAS_DEPENDENT_CLONES = re.compile(r"cannot destroy '(?P<ds>[^']+)': snapshot has dependent clones")


def parse_destroy_error(text: str) -> DestroyBlocked | None:
    """Read ``zfs destroy``'s refusal (also inside lxc-destroy's output) into the blocking datasets."""
    lines = [ln.strip() for ln in text.splitlines()]
    for i, line in enumerate(lines):
        m = _HAS_CHILDREN.search(line) or _HAS_DEPENDENT_CLONES.search(line)
        if not m:
            continue
        children = []
        for follow in lines[i + 1 :]:
            if follow.startswith("use '-r'") or follow.startswith("use '-R'") or not follow:
                continue
            if re.fullmatch(r"[A-Za-z0-9_.:/@-]+", follow) and "/" in follow:
                children.append(follow)
            else:
                break
        return DestroyBlocked(m["ds"], children)
    return None


DATASET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*(/[A-Za-z0-9_.:-]+)*(@[A-Za-z0-9_.:-]+)?")


def _dataset(name: str) -> str:
    if not DATASET_RE.fullmatch(name):
        raise ValueError(f"invalid ZFS dataset name {name!r}")
    return name


class ZfsDriver:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    @staticmethod
    def zpool_create_argv(pool: str, vdevs: list[str], *, mountpoint: str) -> list[str]:
        return ["zpool", "create", "-m", mountpoint, _dataset(pool), *vdevs]

    @staticmethod
    def zpool_destroy_argv(pool: str) -> list[str]:
        return ["zpool", "destroy", _dataset(pool)]

    @staticmethod
    def zfs_destroy_argv(dataset: str) -> list[str]:
        # Never -r/-R: dependants are listed to the user, not destroyed behind their back.
        return ["zfs", "destroy", _dataset(dataset)]

    @staticmethod
    def zfs_promote_argv(clone: str) -> list[str]:
        return ["zfs", "promote", _dataset(clone)]

    @staticmethod
    def zfs_create_argv(dataset: str) -> list[str]:
        return ["zfs", "create", _dataset(dataset)]

    @staticmethod
    def zfs_snapshot_argv(snapshot: str) -> list[str]:
        if "@" not in snapshot:
            raise ValueError(f"a snapshot is named dataset@name, not {snapshot!r}")
        return ["zfs", "snapshot", _dataset(snapshot)]

    @staticmethod
    def zfs_clone_argv(snapshot: str, clone: str) -> list[str]:
        if "@" not in snapshot or "@" in clone:
            raise ValueError(f"zfs clone takes a snapshot and a new dataset, not {snapshot!r} {clone!r}")
        return ["zfs", "clone", _dataset(snapshot), _dataset(clone)]

    def create_dataset(self, dataset: str) -> None:
        """A container's dataset, as ``lxc-create -B zfs`` makes it."""
        self.runner.run(self.zfs_create_argv(dataset), error_message=f"zfs create {dataset} failed")

    def snapshot_and_clone(self, origin: str, clone: str, snapshot_name: str) -> str:
        """``lxc-copy -s`` on ZFS: ``origin@snapshot_name`` and a clone of it; returns the snapshot."""
        snapshot = f"{origin}@{snapshot_name}"
        self.runner.run(self.zfs_snapshot_argv(snapshot), error_message=f"zfs snapshot {snapshot} failed")
        self.runner.run(self.zfs_clone_argv(snapshot, clone), error_message=f"zfs clone {clone} failed")
        return snapshot

    def origins(self, root: str) -> dict[str, str]:
        """Every dataset and snapshot under ``root`` with the snapshot it was cloned from ('' if none)."""
        argv = ["zfs", "list", "-H", "-t", "all", "-o", "name,origin", "-r", _dataset(root)]
        out: dict[str, str] = {}
        for line in self.runner.run(argv, record=False).stdout.splitlines():
            name, _, origin = line.partition("\t")
            if name:
                out[name] = "" if origin.strip() in ("", "-") else origin.strip()
        return out

    def safe_order(self, dataset: str, rows: dict[str, str] | None = None) -> list[str]:
        """The complete order that removes ``dataset``: each clone (and what depends on it) before
        the snapshot it came from, each snapshot before its dataset, the dataset last. ``rows``
        is the pool's :meth:`origins` when the caller has read it already."""
        if rows is None:
            rows = self.origins(dataset.split("/")[0].split("@")[0])

        def dependants(name: str, depth: int = 0) -> list[str]:
            if depth > 50:
                return []
            found: list[str] = []
            snapshots = [name] if "@" in name else sorted(n for n in rows if n.startswith(name + "@"))
            for snap in snapshots:
                for clone in sorted(n for n, origin in rows.items() if origin == snap):
                    found += [*dependants(clone, depth + 1), clone]
                if snap != name:
                    found.append(snap)
            return found

        return [*dependants(dataset), dataset]

    def create_pool(self, pool: str, vdevs: list[str], *, mountpoint: str) -> None:
        self.runner.run(
            self.zpool_create_argv(pool, vdevs, mountpoint=mountpoint), error_message="zpool create failed"
        )

    def destroy_pool(self, pool: str) -> None:
        self.runner.run(self.zpool_destroy_argv(pool), error_message=f"zpool destroy {pool} failed")

    def destroy(self, dataset: str) -> None:
        """``zfs destroy``; a refusal because of children is raised with the safe order."""
        result = self.runner.run(self.zfs_destroy_argv(dataset), check=False)
        if result.returncode == 0:
            return
        blocked = parse_destroy_error(result.stderr)
        if blocked is not None:
            # The refusal names only the direct children; the listing gives the whole order
            # (a snapshot's clones before the snapshot, before the dataset).
            try:
                order = [f"zfs destroy {name}" for name in self.safe_order(blocked.dataset)]
            except CommandError:
                order = blocked.safe_order
            raise CommandError(
                f"{blocked.dataset} has dependants: {', '.join(blocked.children)}; "
                f"safe order: {'; '.join(order)} ({blocked.alternative})",
                argv=result.argv,
                returncode=result.returncode,
                stderr=result.stderr,
            )
        raise CommandError(f"zfs destroy {dataset} failed: {result.stderr.strip()}", argv=result.argv)

    def list_pools(self) -> list[Zpool]:
        return parse_zpool_list(self.runner.run(["zpool", "list"], record=False).stdout)

    def status(self) -> list[ZpoolStatus]:
        return parse_zpool_status(self.runner.run(["zpool", "status"], record=False).stdout)

    def datasets(self, root: str | None = None, *, snapshots: bool = False) -> list[Dataset]:
        """``zfs list`` (``-t all`` with ``snapshots``, ``-r ROOT`` for one pool or dataset)."""
        argv = [
            "zfs",
            "list",
            *(["-t", "all"] if snapshots else []),
            *(["-r", _dataset(root)] if root else []),
        ]
        return parse_zfs_list(self.runner.run(argv, record=False).stdout)


def _zfs_order(zfs: ZfsDriver, rows: dict[str, str], inside: list[str]) -> list[str]:
    """Top-level datasets' complete safe orders (clones, snapshots, children), one after another,
    from the pool's one ``zfs list`` (``rows``)."""
    order: list[str] = []
    for top in sorted(n for n in inside if n.count("/") == 1 and "@" not in n):
        order += [n for n in zfs.safe_order(top, rows) if n not in order]
    return order + sorted(n for n in inside if n not in order)


def zpool_of(pool: Pool) -> str:
    """The pool's zpool: its own field (the pool form names it after the pool, as rows made
    before that field did)."""
    return pool.zpool or pool.name


def _has_zfs(host: Host) -> bool:
    return bool(host.capabilities.get("zfs", {}).get("kernel"))


@register
class ZfsPool(PoolType):
    """A zpool on a device, mounted at its LXC path; containers get datasets (``-B zfs``)."""

    kind = "zfs"
    noun = "ZFS pool"
    wiped_by = "zpool create"
    signature = "zfs_member"

    def check_host(self, host: Host) -> None:
        if not _has_zfs(host):
            raise InvalidInput(
                f"host {host.slug} has no ZFS kernel module; ZFS pools cannot be made there", field="kind"
            )

    def validate(self, host, inventory, *, name, device, vg_name, path, lxc_path):
        if inventory is not None and name in inventory.zpools:
            raise Conflict(f"a ZFS pool named {name!r} already exists on host {host.slug}", field="name")
        return {"lxc_path": lxc_path, "zpool": name}

    def blockers(self, pool: Pool, owned_rootfs: set[str]) -> list[Dependant]:
        roots = {pool.name, zpool_of(pool)}
        rows = [d if isinstance(d, dict) else {"name": d} for d in pool.details.get("datasets", [])]

        def order(d: dict) -> tuple[int, int, str]:
            # Clones before the snapshots they come from, snapshots before their datasets,
            # children before parents.
            rank = 0 if d.get("origin") else 1 if "@" in d["name"] else 2
            return rank, -d["name"].count("/"), d["name"]

        owned = {r.removeprefix("zfs:") for r in owned_rootfs if r.startswith("zfs:")}
        rows = [d for d in rows if d["name"].partition("@")[0] not in owned]
        out = []
        for d in sorted((d for d in rows if d["name"] not in roots), key=order):
            kind = "clone" if d.get("origin") else "snapshot" if "@" in d["name"] else "dataset"
            out.append(Dependant(kind, d["name"], f"zfs destroy {d['name']}"))
        return out

    def container_store(self, pool: Pool, host: Host, *, fssize: str | None) -> dict[str, str]:
        caps = host.capabilities or {}
        if caps and not (caps.get("zfs", {}).get("available") and caps.get("zfs", {}).get("kernel")):
            raise InvalidInput(
                f"host {host.slug} has no ZFS: -B zfs containers cannot be created there",
                field="backing_store",
            )
        return {"zfsroot": zpool_of(pool)}

    def lxc_create_args(self, *, vgname: str | None, fssize: str | None, zfsroot: str | None) -> list[str]:
        if not (zfsroot and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,200}", zfsroot)):
            raise ValueError(f"invalid ZFS root {zfsroot!r}")
        return ["-B", "zfs", "--zfsroot", zfsroot]

    def create(self, params: dict[str, Any], runner: Runner, progress: Progress) -> dict[str, str]:
        zpool, device, lxc_path = params["zpool"], params["device"], params["lxc_path"]
        progress(20, f"zpool create {zpool}")
        ZfsDriver(runner).create_pool(zpool, [device], mountpoint=lxc_path)
        return {"source": device, "mountpoint": lxc_path, "zpool": zpool}

    def read(self, pool: Pool, runner: Runner, details: dict) -> Reading:
        """``zpool list``/``status`` and every dataset, snapshot and clone of the pool, with origins."""
        if not _has_zfs(pool.host):
            return Reading(health="ZFS is not available on this host")
        zfs = ZfsDriver(runner)
        zpool = zpool_of(pool)
        found = [p for p in zfs.list_pools() if p.name == zpool]
        if not found:
            details.update(zpool={}, status=[], datasets=[])
            return Reading(health=f"zpool {zpool} not found")
        origins = zfs.origins(zpool)
        details["zpool"] = asdict(found[0])
        details["status"] = [asdict(s) for s in zfs.status() if s.pool == zpool]
        details["datasets"] = [
            {**asdict(d), "origin": origins.get(d.name, ""), "snapshot": "@" in d.name}
            for d in zfs.datasets(zpool, snapshots=True)
        ]
        health = found[0].health
        return Reading(
            found[0].size, found[0].alloc, "ok" if health == "ONLINE" else f"zpool health {health}"
        )

    def destroy(self, pool: Pool, runner: Runner, progress: Progress) -> None:
        from storage.drivers.dir import DirDriver

        zfs = ZfsDriver(runner)
        zpool = zpool_of(pool)
        # zpool destroy takes every dataset with it: anything but the root is listed instead.
        rows = zfs.origins(zpool)
        inside = [name for name in rows if name != zpool]
        if inside:
            order = "; ".join(f"zfs destroy {name}" for name in _zfs_order(zfs, rows, inside))
            held = ", ".join(sorted(inside))
            raise ServiceError(f"ZFS pool {zpool} still holds {held}; safe order: {order}. Nothing was done")
        progress(30, f"zpool destroy {zpool}")
        zfs.destroy_pool(zpool)
        DirDriver(runner).remove_if_empty(pool.lxc_path)
