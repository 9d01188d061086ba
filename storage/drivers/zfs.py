"""ZFS pools: ``zpool create/list/status/destroy``, ``zfs list/destroy/promote`` argv and parsers.

This host kernel has no ZFS module, so the driver is tested by the exact argv it runs
and by parsing the seed chapter's real outputs, including the refusal
``cannot destroy 'lxc/zfs_container': filesystem has children``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from console.runner import CommandError, Runner

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
