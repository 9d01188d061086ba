"""Btrfs pool: snapshot vs full copy of a container with a 1 GiB rootfs, and the console's snapshot.

Measured in one run on this machine:

* ``lxc-copy -P POOL -n base -N snapN -s`` (a btrfs subvolume snapshot, copy-on-write) against
  ``lxc-copy -P POOL -n base -N fullN -p POOL2 -B btrfs`` (a full copy with rsync): the wall
  time of the command, median of the rounds, and the ratio full / snapshot;
* the console doing the snapshot (POST ``/containers/<pk>/copy/`` with ``snapshot=on``, Django test
  client, logged-in superuser, until the Operation is terminal) against the raw ``lxc-copy -s``.

Before every timed copy: ``sync``, ``btrfs subvolume sync`` (the previous copy's deletion is
finished) and ``echo 3 > /proc/sys/vm/drop_caches``, so the full copy reads the 1 GiB from disk
instead of the page cache (for both the loop device and its backing file). Each copy is destroyed
after it is timed (``lxc-destroy`` for the raw ones, the console's destroy for the console's). The
timing stops when ``lxc-copy`` exits; the full copy's data may still be dirty in the page cache
then, so the ``sync`` after it is timed separately and printed as a note, not added in.

Why the full copy goes to a second pool: LXC 5 turns a copy into a subvolume snapshot by itself
whenever source and target LXC paths are on the same btrfs filesystem (``lxc-copy`` without ``-s``
on one pool makes a snapshot too: its rootfs has a Parent UUID and it takes as long as ``-s``;
``-B dir`` is refused with "Directories cannot be snapshotted"). Only a target on another
filesystem gets a real copy (rsync). So POOL2 is a second, equal btrfs pool (same size, loop
file on the same disk); the bench checks that every snapshot's rootfs has a Parent UUID, that no
full copy's has one, and that both hold the whole data.bin.

The pools are the benchmark's own fixture, set up directly with argv lists through subprocess (not
through the console's storage services): a 4 GiB sparse file each in the bench's temp dir (under
/var/tmp, on disk), ``losetup --find --show``, ``mkfs.btrfs -q``, mounted at a temp dir that is
the LXC path. ``base`` is ``lxc-create -B btrfs -t busybox`` plus 1 GiB of /dev/urandom (btrfs can
neither compress nor dedupe it) in its rootfs. The raw copies are timed before the agent starts;
the console's run with its own Redis (loopback, free port) and agent (``manage.py agent``) on that
LXC path, as bench/lifecycle.py does.

Run as root:  .venv/bin/python bench/btrfs_snapshot.py [--rounds 3]
Everything it made is removed in a finally block: agent and Redis (by their Popen handles),
every container on the pools, the mounts, the loop devices it attached (only those), the temp dir.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import ConsoleUnderTest

IMAGE_SIZE = 4 * 1024**3
DATA_MIB = 1024


def run(*argv: str, timeout: float = 600) -> str:
    return subprocess.run(list(argv), check=True, capture_output=True, text=True, timeout=timeout).stdout


def is_mounted(path: Path) -> bool:
    target = str(path)
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == target for line in f if len(line.split()) > 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: it attaches loop devices, mounts btrfs and runs LXC")

    state = Path(tempfile.mkdtemp(prefix="console-bench-btrfs-", dir="/var/tmp"))
    pool, pool2 = state / "pool", state / "pool2"  # pool2: the full copies' target (see above)
    devices: list[str] = []  # the loop devices this run attached, and only those
    harness: ConsoleUnderTest | None = None
    raw: dict[str, list[float]] = {"snapshot": [], "full": [], "full_sync": []}
    console: list[float] = []
    rootfs_bytes = 0

    def drop_caches() -> None:
        run("sync")
        run("btrfs", "subvolume", "sync", str(pool))  # the previous copy's deletion is done
        run("btrfs", "subvolume", "sync", str(pool2))
        Path("/proc/sys/vm/drop_caches").write_text("3\n")

    def check_copy(rootfs: Path, *, snapshot: bool) -> None:
        """A snapshot's subvolume has a Parent UUID, a full copy's has none; both hold data.bin."""
        show = subprocess.run(["btrfs", "subvolume", "show", str(rootfs)], capture_output=True, text=True)
        lines = show.stdout.splitlines() if show.returncode == 0 else []
        parent = next((line.split(":", 1)[1].strip() for line in lines if "Parent UUID" in line), "-")
        if (parent != "-") != snapshot or (rootfs / "data.bin").stat().st_size != DATA_MIB * 1024**2:
            raise SystemExit(f"{rootfs}: not the {'snapshot' if snapshot else 'full copy'} expected")

    def timed(*argv: str) -> float:
        t = time.perf_counter()
        subprocess.run(list(argv), check=True, capture_output=True, timeout=900)
        return time.perf_counter() - t

    try:
        # Each pool: sparse file -> loop device -> btrfs -> mount (the LXC path).
        for mountpoint in (pool, pool2):
            image = state / f"{mountpoint.name}.img"
            run("truncate", "-s", str(IMAGE_SIZE), str(image))
            device = run("losetup", "--find", "--show", str(image)).strip()
            if not re.fullmatch(r"/dev/loop\d+", device):
                raise SystemExit(f"losetup printed {device!r}, not a loop device")
            devices.append(device)
            run("mkfs.btrfs", "-q", device)
            mountpoint.mkdir()
            run("mount", "-t", "btrfs", device, str(mountpoint))

        p = ["-P", str(pool)]
        run("lxc-create", *p, "-n", "base", "-B", "btrfs", "-t", "busybox")
        rootfs = pool / "base" / "rootfs"
        run("dd", "if=/dev/urandom", f"of={rootfs / 'data.bin'}", "bs=1M", f"count={DATA_MIB}", "status=none")
        run("sync")
        rootfs_bytes = int(run("du", "-sb", str(rootfs)).split()[0])

        # Raw tools, snapshot and full copy alternating, each copy destroyed after its timing.
        for i in range(args.rounds):
            drop_caches()
            raw["snapshot"].append(timed("lxc-copy", *p, "-n", "base", "-N", f"snap{i}", "-s"))
            check_copy(pool / f"snap{i}" / "rootfs", snapshot=True)
            run("lxc-destroy", *p, "-n", f"snap{i}")
            drop_caches()
            raw["full"].append(
                timed("lxc-copy", *p, "-n", "base", "-N", f"full{i}", "-p", str(pool2), "-B", "btrfs")
            )
            raw["full_sync"].append(timed("sync"))
            check_copy(pool2 / f"full{i}" / "rootfs", snapshot=False)
            run("lxc-destroy", "-P", str(pool2), "-n", f"full{i}")

        # The console: its own Redis, database and agent on the pool's LXC path.
        harness = ConsoleUnderTest(state, pool)
        from containers.models import Container

        harness.wait_for(
            lambda: Container.objects.filter(host__slug="bench", lxc_path=str(pool), name="base").exists(),
            "the agent to record the container 'base'",
        )
        base = Container.objects.get(host__slug="bench", lxc_path=str(pool), name="base")

        console_op = harness.timed_post

        for i in range(args.rounds):
            name = f"csnap{i}"
            drop_caches()
            console.append(console_op(f"/containers/{base.pk}/copy/", {"new_name": name, "snapshot": "on"}))
            copy = Container.objects.get(host__slug="bench", lxc_path=str(pool), name=name)
            assert copy.origin_kind == "snapshot", copy.origin_kind
            console_op(f"/containers/{copy.pk}/destroy/", {"confirm": name})
    finally:
        if harness is not None:
            harness.close()
        for mountpoint in (pool2, pool):
            if not is_mounted(mountpoint):
                continue
            # Copies first (a snapshot's origin last), then base.
            names = sorted((c.parent.name for c in mountpoint.glob("*/config")), key=lambda n: n == "base")
            for name in names:
                subprocess.run(["lxc-stop", "-P", str(mountpoint), "-n", name, "-k"], capture_output=True)
                subprocess.run(["lxc-destroy", "-P", str(mountpoint), "-n", name, "-f"], capture_output=True)
            subprocess.run(["umount", str(mountpoint)], capture_output=True)
        for device in devices:
            subprocess.run(["losetup", "-d", device], capture_output=True)
        still = [str(m) for m in (pool, pool2) if is_mounted(m)]
        if still:
            print(f"warning: {', '.join(still)} still mounted; left {state} in place", file=sys.stderr)
        else:
            shutil.rmtree(state, ignore_errors=True)

    def ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    snap, full, con = ms(raw["snapshot"]), ms(raw["full"]), ms(console)
    rows = [
        ("full copy (`lxc-copy -p POOL2 -B btrfs`, rsync) vs snapshot (`lxc-copy -s`)", full, snap),
        ("console snapshot (request -> terminal operation) vs raw `lxc-copy -s`", con, snap),
    ]
    print(f"\n{args.rounds} rounds on {socket.gethostname()}, medians, sync + drop_caches before each copy.")
    print(f"rootfs of base: {rootfs_bytes / 1024**3:.2f} GiB (du -sb; {DATA_MIB} MiB urandom)\n")
    print("| comparison | time | baseline | ratio |")
    print("|---|---|---|---|")
    for label, value, baseline in rows:
        print(f"| {label} | {value:.0f} ms | {baseline:.0f} ms | {value / baseline:.1f} |")
    print(f"\n`sync` right after each full copy (not included above): median {ms(raw['full_sync']):.0f} ms")
    rounds = {**raw, "console": console}
    print("rounds (ms): " + "; ".join(f"{k} {[round(v * 1000) for v in vs]}" for k, vs in rounds.items()))


if __name__ == "__main__":
    main()
