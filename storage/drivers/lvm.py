"""LVM pools: ``pvcreate``/``vgcreate`` on a device, ``pvs``/``vgs``/``lvs`` parsed.

The agent reads LVM with ``--reportformat json --units b --nosuffix`` (exact bytes);
the human tables (``lvs`` as the seed chapter prints it) and ``lvdisplay`` are parsed too,
for output pasted from elsewhere and for tests with the chapter's real outputs.
This host kernel has no device-mapper: logical volumes cannot be created here, so the
LV commands are tested by the exact argv they would run.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

from console.runner import CommandError, CommandResult, Runner

# The host prints "File descriptor N leaked on pvs invocation" for every fd Celery leaves open.
LVM_ENV = {"LVM_SUPPRESS_FD_WARNINGS": "1"}
_UNITS = {"b": 1, "s": 512, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def parse_lvm_size(value: str) -> int:
    """``75.00g``, ``<296.00m``, ``10.00 GiB``, ``310378496`` (with ``--units b --nosuffix``)."""
    text = value.strip().lstrip("<>").replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([bskmgtp])?(?:i?b)?", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"not an LVM size: {value!r}")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "b").lower()])


@dataclass
class PhysicalVolume:
    name: str
    vg: str
    fmt: str
    attr: str
    size: int
    free: int


@dataclass
class VolumeGroup:
    name: str
    pv_count: int
    lv_count: int
    snap_count: int
    attr: str
    size: int
    free: int


@dataclass
class LogicalVolume:
    name: str
    vg: str
    attr: str
    size: int
    pool: str = ""
    origin: str = ""
    data_percent: float | None = None

    @property
    def is_snapshot(self) -> bool:
        return self.attr[:1] in ("s", "S")

    @property
    def is_origin(self) -> bool:
        return self.attr[:1] in ("o", "O")


@dataclass
class LvDisplay:
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return self.fields.get("LV Path", "")

    @property
    def name(self) -> str:
        return self.fields.get("LV Name", "")

    @property
    def vg(self) -> str:
        return self.fields.get("VG Name", "")

    @property
    def size(self) -> int:
        return parse_lvm_size(self.fields.get("LV Size", "0"))

    @property
    def open_count(self) -> int:
        return int(self.fields.get("# open", "0") or 0)


def _report(text: str, kind: str) -> list[dict]:
    data = json.loads(text)
    return [row for report in data.get("report", []) for row in report.get(kind, [])]


def parse_pvs_json(text: str) -> list[PhysicalVolume]:
    return [
        PhysicalVolume(
            r["pv_name"],
            r.get("vg_name", ""),
            r.get("pv_fmt", ""),
            r.get("pv_attr", ""),
            parse_lvm_size(r["pv_size"]),
            parse_lvm_size(r.get("pv_free") or "0"),
        )
        for r in _report(text, "pv")
    ]


def parse_vgs_json(text: str) -> list[VolumeGroup]:
    return [
        VolumeGroup(
            r["vg_name"],
            int(r.get("pv_count") or 0),
            int(r.get("lv_count") or 0),
            int(r.get("snap_count") or 0),
            r.get("vg_attr", ""),
            parse_lvm_size(r["vg_size"]),
            parse_lvm_size(r.get("vg_free") or "0"),
        )
        for r in _report(text, "vg")
    ]


def parse_lvs_json(text: str) -> list[LogicalVolume]:
    out = []
    for r in _report(text, "lv"):
        data = r.get("data_percent") or ""
        out.append(
            LogicalVolume(
                r["lv_name"],
                r.get("vg_name", ""),
                r.get("lv_attr", ""),
                parse_lvm_size(r["lv_size"]),
                r.get("pool_lv", ""),
                r.get("origin", ""),
                float(data) if data else None,
            )
        )
    return out


def _rows(text: str, first_header: str) -> list[list[str]]:
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    return [ln for ln in lines if ln and ln[0] != first_header]


def parse_pvs_table(text: str) -> list[PhysicalVolume]:
    """``pvs``: ``PV VG Fmt Attr PSize PFree``; a PV outside any VG has an empty VG column."""
    out = []
    for cells in _rows(text, "PV"):
        if len(cells) == 5:
            cells.insert(1, "")
        if len(cells) < 6:
            continue
        name, vg, fmt, attr, size, free = cells[:6]
        out.append(PhysicalVolume(name, vg, fmt, attr, parse_lvm_size(size), parse_lvm_size(free)))
    return out


def parse_vgs_table(text: str) -> list[VolumeGroup]:
    """``vgs``: ``VG #PV #LV #SN Attr VSize VFree``."""
    out = []
    for cells in _rows(text, "VG"):
        if len(cells) < 7:
            continue
        name, pvs, lvs, sns, attr, size, free = cells[:7]
        out.append(
            VolumeGroup(name, int(pvs), int(lvs), int(sns), attr, parse_lvm_size(size), parse_lvm_size(free))
        )
    return out


def _is_number(text: str) -> bool:
    return re.fullmatch(r"\d+(?:\.\d+)?", text) is not None


def parse_lvs_table(text: str) -> list[LogicalVolume]:
    """``lvs``: ``LV VG Attr LSize Pool Origin Data% ...``.

    Empty columns vanish when the table is split on blanks (and the seed's copy has its
    padding collapsed), so the attribute decides: a snapshot (``s``) names its origin next,
    a thin volume (``V``) its pool; a number is the Data% column.
    """
    out = []
    for cells in _rows(text, "LV"):
        if len(cells) < 4:
            continue
        name, vg, attr, size, *rest = cells
        lv = LogicalVolume(name, vg, attr, parse_lvm_size(size))
        words = [c for c in rest if not _is_number(c)]
        numbers = [c for c in rest if _is_number(c)]
        if attr[:1] in ("V",) and words:
            lv.pool = words.pop(0)
        if words and (lv.is_snapshot or attr[:1] == "V"):
            lv.origin = words.pop(0)
        if numbers:
            lv.data_percent = float(numbers[0])
        out.append(lv)
    return out


_LVDISPLAY_KEYS = (
    "LV Path",
    "LV Name",
    "VG Name",
    "LV UUID",
    "LV Write Access",
    "LV Creation host, time",
    "LV snapshot status",
    "LV Status",
    "# open",
    "LV Size",
    "Current LE",
    "COW-table size",
    "COW-table LE",
    "Allocated to snapshot",
    "Snapshot chunk size",
    "Segments",
    "Allocation",
    "Read ahead sectors",
    "- currently set to",
    "Block device",
)


def parse_lvdisplay(text: str) -> list[LvDisplay]:
    """``lvdisplay``: one block per ``--- Logical volume ---``."""
    out: list[LvDisplay] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("--- Logical volume ---"):
            out.append(LvDisplay())
            continue
        if not out or not line:
            continue
        key = next((k for k in _LVDISPLAY_KEYS if line.startswith(k)), None)
        if key is None:
            key, _, value = _split2(line)
        else:
            value = line[len(key) :].strip()
        out[-1].fields[key] = value
    return out


def _split2(line: str) -> tuple[str, str, str]:
    parts = re.split(r"\s{2,}", line, maxsplit=1)
    return (parts[0], "", parts[1] if len(parts) > 1 else "")


@dataclass
class LvmDependants:
    """What must go before a volume group can be removed, in a safe order."""

    snapshots: list[str]
    volumes: list[str]

    @property
    def order(self) -> list[str]:
        return [f"lvremove {name}" for name in [*self.snapshots, *self.volumes]]


def vg_dependants(vg: str, lvs: list[LogicalVolume]) -> LvmDependants:
    """Snapshots first (they need their origin), then the other logical volumes of ``vg``."""
    mine = [lv for lv in lvs if lv.vg == vg]
    return LvmDependants(
        snapshots=[f"{vg}/{lv.name}" for lv in mine if lv.is_snapshot],
        volumes=[f"{vg}/{lv.name}" for lv in mine if not lv.is_snapshot],
    )


def as_rows(items: list) -> list[dict]:
    return [asdict(i) for i in items]


class LvmDriver:
    """Physical volumes, volume groups and logical volumes through the ``lvm`` tools."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def _run(self, argv: list[str], **kwargs) -> CommandResult:  # noqa: ANN003
        return self.runner.run(argv, env=LVM_ENV, **kwargs)

    def pvcreate(self, device: str) -> None:
        self._run(["pvcreate", device], error_message=f"pvcreate failed on {device}")

    def pvremove(self, device: str) -> None:
        self._run(["pvremove", device], error_message=f"pvremove failed on {device}")

    def vgcreate(self, vg: str, devices: list[str]) -> None:
        self._run(["vgcreate", vg, *devices], error_message=f"vgcreate could not create {vg}")

    def vgremove(self, vg: str) -> None:
        # Never -f: a VG that still has logical volumes must be refused, not emptied.
        self._run(["vgremove", vg], error_message=f"vgremove could not remove {vg}")

    def lvcreate_argv(self, vg: str, name: str, size_bytes: int) -> list[str]:
        # A new volume may land on the extents of a removed one and find its old filesystem
        # signature; lvcreate then asks "Wipe it? [y/n]" and, with stdin closed, gives up. The
        # volume is new: wipe (as LXC's own lvcreate does).
        return ["lvcreate", "-W", "y", "--yes", "-L", f"{size_bytes}b", "-n", name, vg]

    def lvcreate(self, vg: str, name: str, size_bytes: int) -> None:
        self._run(self.lvcreate_argv(vg, name, size_bytes), error_message=f"lvcreate could not create {name}")

    def snapshot_argv(self, vg: str, origin: str, name: str, size_bytes: int) -> list[str]:
        return ["lvcreate", "-s", "-L", f"{size_bytes}b", "-n", name, f"{vg}/{origin}"]

    def lvremove_argv(self, vg: str, name: str) -> list[str]:
        return ["lvremove", "-y", f"{vg}/{name}"]

    def lvremove(self, vg: str, name: str) -> None:
        """Remove one logical volume, never an origin with snapshots (``lvremove -y`` would take the
        snapshots with it): those are listed, to be removed first."""
        snapshots = sorted(lv.name for lv in self.lvs(vg) if lv.origin == name)
        if snapshots:
            raise CommandError(
                f"{vg}/{name} cannot be removed: these snapshots depend on it: {', '.join(snapshots)}; "
                "remove them first",
                argv=self.lvremove_argv(vg, name),
            )
        self._run(self.lvremove_argv(vg, name), error_message=f"lvremove could not remove {vg}/{name}")

    def pvs(self) -> list[PhysicalVolume]:
        argv = [
            "pvs",
            "--reportformat",
            "json",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            "pv_name,vg_name,pv_fmt,pv_attr,pv_size,pv_free",
        ]
        return parse_pvs_json(self._run(argv, record=False, timeout=60).stdout)

    def vgs(self) -> list[VolumeGroup]:
        argv = [
            "vgs",
            "--reportformat",
            "json",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            "vg_name,pv_count,lv_count,snap_count,vg_attr,vg_size,vg_free",
        ]
        return parse_vgs_json(self._run(argv, record=False, timeout=60).stdout)

    def lvs(self, vg: str | None = None) -> list[LogicalVolume]:
        argv = [
            "lvs",
            "--reportformat",
            "json",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            "lv_name,vg_name,lv_attr,lv_size,pool_lv,origin,data_percent",
        ]
        result = self._run([*argv, *([vg] if vg else [])], record=False, timeout=60, check=False)
        if result.returncode != 0:
            raise CommandError(f"lvs failed: {result.stderr.strip()}", argv=result.argv, stderr=result.stderr)
        return parse_lvs_json(result.stdout)
