"""Console overhead on the container lifecycle, measured against the raw lxc-* commands.

For create, start, stop, freeze and snapshot: the wall time from the HTTP request (Django
test client, logged-in admin) until the Operation is terminal, divided by the time of the
raw ``lxc-*`` command(s) doing the same work, measured in one run on this machine.

Run as root:  .venv/bin/python bench/lifecycle.py [--rounds 5]
It uses its own state directory, Redis (loopback, free port) and agent, and destroys every
container it makes.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="console-bench-", dir="/var/tmp"))
    lxc_console = state / "lxc-console"
    lxc_raw = state / "lxc-raw"
    lxc_console.mkdir()
    lxc_raw.mkdir()
    console = ConsoleUnderTest(state, lxc_console)
    from containers.models import Container

    # The agent follows lxc-monitor on its LXC path; give the raw path the same listener so both
    # sides run under the same conditions (lxc-freeze polls once per second while a listener
    # is attached and the freezer cgroup still reads FREEZING).
    raw_monitor = subprocess.Popen(["lxc-monitor", "-P", str(lxc_raw)], stdout=subprocess.DEVNULL)
    results: dict[str, list[tuple[float, float]]] = {}
    try:
        console.wait_registered()

        def timed_raw(*argv: str) -> float:
            t = time.perf_counter()
            subprocess.run(list(argv), check=True, capture_output=True)
            return time.perf_counter() - t

        timed_console = console.timed_post

        def settle(path: Path, name: str) -> None:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                out = subprocess.run(
                    ["lxc-info", "-P", str(path), "-n", name, "-iH"], capture_output=True, text=True
                ).stdout
                if out.strip():
                    time.sleep(0.5)
                    return
                time.sleep(0.1)

        def record(name: str, console: float, raw: float) -> None:
            results.setdefault(name, []).append((console, raw))

        raw_p = ["-P", str(lxc_raw)]
        for i in range(args.rounds):
            n = f"b{i}"
            raw = timed_raw("lxc-create", *raw_p, "-n", n, "-t", "busybox")
            con = timed_console("/containers/new/", {"host": "bench", "name": n, "template": "busybox"})
            record("create (busybox)", con, raw)
            c = Container.objects.get(name=n)

            raw = timed_raw("lxc-start", *raw_p, "-n", n, "-d") + timed_raw(
                "lxc-wait", *raw_p, "-n", n, "-s", "RUNNING", "-t", "10"
            )
            con = timed_console(f"/containers/{c.pk}/start/", {})
            record("start", con, raw)
            # Compare settled containers: busybox's init ignores signals and freezes slowly
            # until its rcS (udhcpc) is done, which takes a few seconds after a start.
            settle(lxc_raw, n)
            settle(lxc_console, n)

            raw = timed_raw("lxc-freeze", *raw_p, "-n", n) + timed_raw(
                "lxc-wait", *raw_p, "-n", n, "-s", "FROZEN", "-t", "10"
            )
            con = timed_console(f"/containers/{c.pk}/freeze/", {})
            record("freeze", con, raw)
            timed_raw("lxc-unfreeze", *raw_p, "-n", n)
            timed_console(f"/containers/{c.pk}/unfreeze/", {})

            raw = timed_raw("lxc-stop", *raw_p, "-n", n, "-t", "30")
            con = timed_console(f"/containers/{c.pk}/stop/", {"timeout": "30"})
            record("stop (clean)", con, raw)

            raw = timed_raw("lxc-copy", *raw_p, "-n", n, "-N", f"{n}s", "-s")
            con = timed_console(f"/containers/{c.pk}/copy/", {"new_name": f"{n}s", "snapshot": "on"})
            record("snapshot (lxc-copy -s)", con, raw)
    finally:
        console.close()
        raw_monitor.terminate()
        raw_monitor.wait(10)
        for path in (lxc_console, lxc_raw):
            for cfg in sorted(path.glob("*/config"), key=lambda p: "s" not in p.parent.name):
                name = cfg.parent.name
                subprocess.run(["lxc-stop", "-P", str(path), "-n", name, "-k"], capture_output=True)
            for cfg in sorted(path.glob("*/config"), key=lambda p: not p.parent.name.endswith("s")):
                subprocess.run(
                    ["lxc-destroy", "-P", str(path), "-n", cfg.parent.name, "-f"], capture_output=True
                )
        shutil.rmtree(state, ignore_errors=True)

    print(f"\n{args.rounds} rounds on {socket.gethostname()}, medians:\n")
    print("| action | console (request -> terminal operation) | raw lxc-* | ratio |")
    print("|---|---|---|---|")
    for name, pairs in results.items():
        con = statistics.median(p[0] for p in pairs)
        raw = statistics.median(p[1] for p in pairs)
        print(f"| {name} | {con * 1000:.0f} ms | {raw * 1000:.0f} ms | {con / raw:.2f} |")


if __name__ == "__main__":
    main()
