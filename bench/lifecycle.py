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
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import ConsoleUnderTest

# The command(s) that do an action's work; the operation's other commands are its refresh.
ACTION_TOOLS = {
    "create (busybox)": ("lxc-create",),
    "start": ("lxc-start",),
    "freeze": ("lxc-cgroup", "lxc-freeze"),
    "stop (clean)": ("lxc-stop",),
    "snapshot (lxc-copy -s)": ("lxc-copy",),
}
STEPS = [
    ("request -> row", "the web: session, form, checks, Operation + audit rows (created_at)"),
    ("row -> claimed", "Celery delivery to the agent, its claim (started_at)"),
    ("claimed -> 1st command", "the agent before the action's command: runner, driver, progress write"),
    ("action commands", "the lxc-* work itself (their own seconds)"),
    ("refresh commands", "other recorded commands (the read-back's lxc-info is unrecorded: next rows)"),
    ("between commands", "Python between the commands: log and command-list writes, events"),
    ("last command -> terminal", "inventory row saved, result, the terminal write (finished_at)"),
    ("terminal -> seen", "the bench's poll of the row (every 5 ms)"),
    ("(row -> answered)", "alongside the above: the web's commit, wake-up to Redis and response"),
    ("= overhead", "request -> seen minus the action commands: what the console adds (the goal: <= 25 ms)"),
]


def breakdown(name: str, last: dict[str, Any]) -> dict[str, float]:
    """Seconds per step of one operation, from its row's timestamps and its commands' ends."""
    op = last["op"]
    created, claimed, finished = (t.timestamp() for t in (op.created_at, op.started_at, op.finished_at))
    steps = dict.fromkeys((s for s, _ in STEPS), 0.0)
    steps["request -> row"] = created - last["request"]
    steps["(row -> answered)"] = last["answered"] - created
    steps["row -> claimed"] = claimed - created
    cursor = claimed
    for i, command in enumerate(op.commands):
        ended = datetime.fromisoformat(command["ended"]).timestamp()
        began = ended - command["seconds"]
        gap = max(0.0, began - cursor)
        steps["claimed -> 1st command" if i == 0 else "between commands"] += gap
        kind = "action commands" if command["argv"][0] in ACTION_TOOLS[name] else "refresh commands"
        steps[kind] += command["seconds"]
        cursor = ended
    steps["last command -> terminal"] = finished - cursor
    steps["terminal -> seen"] = last["seen"] - finished
    steps["= overhead"] = last["seen"] - last["request"] - steps["action commands"]
    return steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="console-bench-", dir="/var/tmp"))
    lxc_console = state / "lxc-console"
    lxc_raw = state / "lxc-raw"
    lxc_console.mkdir()
    lxc_raw.mkdir()
    console = console_ut = ConsoleUnderTest(state, lxc_console)
    from containers.models import Container

    # The agent follows lxc-monitor on its LXC path; give the raw path the same listener so both
    # sides run under the same conditions (lxc-freeze polls once per second while a listener
    # is attached and the freezer cgroup still reads FREEZING).
    raw_monitor = subprocess.Popen(["lxc-monitor", "-P", str(lxc_raw)], stdout=subprocess.DEVNULL)
    results: dict[str, list[tuple[float, float]]] = {}
    steps: dict[str, list[dict[str, float]]] = {}
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
            steps.setdefault(name, []).append(breakdown(name, console_ut.last))

        raw_p = ["-P", str(lxc_raw)]
        for i in range(args.rounds):
            n = f"b{i}"
            raw = timed_raw("lxc-create", *raw_p, "-n", n, "-t", "busybox")
            con = timed_console("/containers/new/", {"host": "bench", "name": n, "template": "busybox"})
            record("create (busybox)", con, raw)
            c = Container.objects.get(name=n)

            # lxc-start -d returns once the container is RUNNING, lxc-freeze once it is FROZEN.
            raw = timed_raw("lxc-start", *raw_p, "-n", n, "-d")
            con = timed_console(f"/containers/{c.pk}/start/", {})
            record("start", con, raw)
            # Compare settled containers: busybox's init ignores signals and freezes slowly
            # until its rcS (udhcpc) is done, which takes a few seconds after a start.
            settle(lxc_raw, n)
            settle(lxc_console, n)

            raw = timed_raw("lxc-freeze", *raw_p, "-n", n)
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

    names = list(steps)
    print("\nWhere the console's time goes (medians of the rounds, ms; the steps of one operation add up")
    print("to its request -> seen time, the medians only roughly):\n")
    print("| step | " + " | ".join(names) + " | what |")
    print("|---|" + "---|" * (len(names) + 1))
    for step, what in STEPS:
        cells = [f"{statistics.median(s[step] for s in steps[n]) * 1000:.1f}" for n in names]
        print(f"| {step} | " + " | ".join(cells) + f" | {what} |")


if __name__ == "__main__":
    main()
