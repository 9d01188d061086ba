"""Resource limits through cgroups: the allow-list, validation, and size parsing.

Keys are the cgroup (v1) files the seed sets with ``lxc-cgroup`` and persists as
``lxc.cgroup.<key>`` in the container config.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from console.errors import InvalidInput

# ASCII digits only: \d, str.isdigit() and int() also take other scripts ("٠"), which the
# kernel does not read.
_SIZE_RE = re.compile(r"([0-9]{1,15})([KMGT]?)(i?B)?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
MIN_MEMORY = 4 * 1024**2


def parse_size(value: str) -> int:
    """``268435456``, ``256M``, ``1G``, ``512MiB`` -> bytes."""
    m = _SIZE_RE.fullmatch(value.strip())
    if not m:
        raise InvalidInput("must be a size such as 268435456, 256M or 1G")
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


def parse_cpu_list(value: str) -> list[int]:
    """``0``, ``0-1``, ``0,2-3`` -> the CPUs named."""
    cpus: list[int] = []
    if not re.fullmatch(r"[0-9]{1,4}(-[0-9]{1,4})?(,[0-9]{1,4}(-[0-9]{1,4})?)*", value.strip()):
        raise InvalidInput("must be a CPU list such as 0, 0-1 or 0,2-3")
    for part in value.strip().split(","):
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi or lo)
        if last < first:
            raise InvalidInput(f"{part}: the range is reversed")
        cpus.extend(range(first, last + 1))
    return cpus


@dataclass(frozen=True)
class LimitKey:
    key: str
    label: str
    help: str
    normalise: Callable[[str, dict], str]


def _memory(value: str, ctx: dict) -> str:
    size = parse_size(value)
    if size < MIN_MEMORY:
        raise InvalidInput(f"must be at least {MIN_MEMORY // 1024**2} MiB")
    used = ctx.get("memory_used")
    if used and size < used:
        raise InvalidInput(
            f"{size} bytes is below the {used} bytes the container uses now; free memory in it or choose more"
        )
    return str(size)


def _cpuset(value: str, ctx: dict) -> str:
    cpus = parse_cpu_list(value)
    host_cpus = ctx.get("host_cpus")
    if host_cpus:
        missing = sorted({c for c in cpus if c >= host_cpus})
        if missing:
            raise InvalidInput(
                f"CPU {', '.join(map(str, missing))} does not exist: the host has {host_cpus} "
                f"(0-{host_cpus - 1})"
            )
    return value.strip()


def _int_between(lo: int, hi: int) -> Callable[[str, dict], str]:
    def check(value: str, _ctx: dict) -> str:
        if not re.fullmatch(r"[0-9]{1,12}", value.strip()) or not lo <= int(value) <= hi:
            raise InvalidInput(f"must be a whole number from {lo} to {hi}")
        return str(int(value))

    return check


def _pids(value: str, _ctx: dict) -> str:
    if value.strip() == "max":
        return "max"
    return _int_between(1, 4194304)(value, _ctx)


LIMIT_KEYS: list[LimitKey] = [
    LimitKey("memory.limit_in_bytes", "Memory limit", "bytes, or 256M / 1G", _memory),
    LimitKey("memory.memsw.limit_in_bytes", "Memory + swap limit", "bytes, or 512M / 2G", _memory),
    LimitKey("cpuset.cpus", "CPU pinning", "CPU list, e.g. 0 or 0-1", _cpuset),
    LimitKey("cpu.shares", "CPU weight", "2-262144 (default 1024)", _int_between(2, 262144)),
    LimitKey(
        "blkio.weight", "Block I/O weight", "10-1000 (needs the BFQ/CFQ scheduler)", _int_between(10, 1000)
    ),
    LimitKey("pids.max", "Process limit", "number of tasks, or max", _pids),
]
LIMITS = {k.key: k for k in LIMIT_KEYS}
# Keys read back from a running container on every refresh.
SHOWN_KEYS = ("memory.limit_in_bytes", "cpuset.cpus", "cpu.shares", "blkio.weight", "pids.max")


def validate_limit(key: str, value: object, ctx: dict) -> str:
    spec = LIMITS.get(key)
    if spec is None:
        raise InvalidInput(f"{key!r} is not an allowed cgroup key; allowed: {', '.join(LIMITS)}", field="key")
    if not isinstance(value, str) or not value.strip() or len(value) > 200 or "\n" in value:
        raise InvalidInput(f"{key}: a single-line value is required", field="value")
    try:
        return spec.normalise(value, ctx)
    except InvalidInput as exc:
        raise InvalidInput(f"{key}: {exc.message}", field="value") from None


def same_value(key: str, a: str | None, b: str | None) -> bool:
    """Compare a saved and a live value the way the kernel would store them."""
    if a is None or b is None:
        return a == b
    if key.startswith("memory."):
        try:
            return parse_size(a) == parse_size(b)
        except InvalidInput:
            return a.strip() == b.strip()
    if key == "cpuset.cpus":
        try:
            return parse_cpu_list(a) == parse_cpu_list(b)
        except InvalidInput:
            return a.strip() == b.strip()
    return a.strip() == b.strip()


def describe_limit(key: str, value: str | None) -> str | None:
    """A saved or a live value as a person reads it, the same way in both columns: memory in MiB
    (GiB when whole), whether it was written ``268435456``, ``256M`` or ``256MiB``; the kernel's
    "no limit" as unlimited. Other keys as they are."""
    if value is None or not key.startswith("memory."):
        return value
    try:
        # The kernel's "no limit" (about 2**63) is longer than a size a person types.
        size = int(value) if re.fullmatch(r"[0-9]{1,20}", value) else parse_size(value)
    except InvalidInput:
        return value
    if size >= 2**62:
        return "unlimited"
    if size >= 1024**3 and size % 1024**3 == 0:
        return f"{size // 1024**3} GiB"
    return f"{round(size / 1024**2, 2):g} MiB"
