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
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="console-bench-", dir="/var/tmp"))
    lxc_console = state / "lxc-console"
    lxc_raw = state / "lxc-raw"
    lxc_console.mkdir()
    lxc_raw.mkdir()
    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "CONSOLE_VAR_DIR": str(state / "var"),
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "ALLOWED_HOSTS": "testserver",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from console.models import Host, Operation
    from containers.models import Container

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_superuser("bench", password="bench-password-123")
    agent = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "agent",
            "--host",
            "bench",
            "--lxc-path",
            str(lxc_console),
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
    )
    # The agent follows lxc-monitor on its LXC path; give the raw path the same listener so both
    # sides run under the same conditions (lxc-freeze polls once per second while a listener
    # is attached and the freezer cgroup still reads FREEZING).
    raw_monitor = subprocess.Popen(["lxc-monitor", "-P", str(lxc_raw)], stdout=subprocess.DEVNULL)
    client = Client()
    client.force_login(user)
    results: dict[str, list[tuple[float, float]]] = {}
    try:
        deadline = time.monotonic() + 60
        while not Host.objects.filter(slug="bench", capabilities__has_key="lxc").exists():
            if time.monotonic() > deadline:
                raise SystemExit("the agent did not register")
            time.sleep(0.2)

        def timed_raw(*argv: str) -> float:
            t = time.perf_counter()
            subprocess.run(list(argv), check=True, capture_output=True)
            return time.perf_counter() - t

        def timed_console(url: str, data: dict) -> float:
            before = Operation.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            t = time.perf_counter()
            response = client.post(url, data)
            assert response.status_code in (302, 202), response.content[:500]
            while True:
                op = Operation.objects.filter(pk__gt=before).order_by("pk").first()
                if op is not None and op.is_terminal:
                    break
                time.sleep(0.005)
            elapsed = time.perf_counter() - t
            assert op.status == "succeeded", op.error + op.log
            if os.environ.get("BENCH_DEBUG"):
                print(
                    op.kind,
                    [(c["argv"][0], c["seconds"]) for c in op.commands],
                    op.started_at - op.created_at,
                    op.finished_at - op.started_at,
                )
            return elapsed

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
        agent.terminate()
        agent.wait(30)
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
        redis.terminate()
        redis.wait(10)
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
