"""The agent's cost with N running containers: processes it starts, CPU, write transaction.

For each N of ``--containers`` (default 10,40): N busybox containers started with the raw tools on
a private LXC path, then an agent (its own SQLite database and Redis, default periods: inventory
sync every 30 s, usage refresh every 5 s) runs for ``--seconds`` (default 60) after its first
sync. Measured over that window:

* processes the agent started per minute: every ``lxc-*`` tool is found first in a directory of
  counting wrappers on the agent's PATH (each appends a line, then execs the real tool);
* the agent's CPU, its own and its children's (``/proc/PID/stat``), in % of one core;
* the write transaction of each inventory sync, from the agent's log line.

With ``--before REF`` the same runs, in the same run and on the same containers, for the code at
git REF (its tree from ``git archive``).

    .venv/bin/python bench/agent.py [--containers 10,40] [--seconds 60] [--before REF]

Root only. Everything is under a scratch directory in /var/tmp; every process is ended by its own
PID and every container destroyed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("lxc-info", "lxc-cgroup", "lxc-ls", "lxc-monitor", "lxc-config", "lxc-attach", "lxc-start")
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrappers(directory: Path, log: Path) -> None:
    """A counting wrapper per tool: append its name to ``log``, then run the real one."""
    directory.mkdir(parents=True)
    for tool in TOOLS:
        real = shutil.which(tool)
        if real is None:
            continue
        script = directory / tool
        script.write_text(f'#!/bin/sh\necho {tool} >> {log}\nexec {real} "$@"\n')
        script.chmod(0o755)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # utime, stime, cutime, cstime: fields 14-17 of stat, 12-15 after the command name
    return sum(int(x) for x in fields[11:15]) / TICKS


def make_containers(path: Path, n: int) -> None:
    for i in range(n):
        name = f"b{i}"
        subprocess.run(
            ["lxc-create", "-P", str(path), "-n", name, "-t", "busybox"], check=True, capture_output=True
        )
        with open(path / name / "config", "a") as f:
            f.write("lxc.apparmor.profile = unconfined\n")
        subprocess.run(["lxc-start", "-P", str(path), "-n", name], check=True, capture_output=True)


def run_variant(label: str, tree: Path, lxc_path: Path, state: Path, redis_url: str, seconds: float) -> dict:
    var = state / f"var-{label}"
    var.mkdir()
    count_log = state / f"count-{label}.log"
    bin_dir = state / f"bin-{label}"
    wrappers(bin_dir, count_log)
    env = {
        **os.environ,
        "CONSOLE_VAR_DIR": str(var),
        "REDIS_URL": redis_url,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "INVENTORY_SYNC_SECONDS": "30",
        "USAGE_REFRESH_SECONDS": "5",
        "AUTOSTART_BOOT_WINDOW_SECONDS": "0",
        "AGENT_STATE_DIR": str(state / f"agent-state-{label}"),
        "DJANGO_SETTINGS_MODULE": "console.settings",
    }
    python = str(ROOT / ".venv" / "bin" / "python")
    subprocess.run([python, "manage.py", "migrate", "-v", "0"], cwd=tree, env=env, check=True)
    log_path = state / f"agent-{label}.log"
    with open(log_path, "w") as log:
        agent = subprocess.Popen(
            [
                python,
                "manage.py",
                "agent",
                "--host",
                "bench",
                "--lxc-path",
                str(lxc_path),
                "--loglevel",
                "INFO",
            ],
            cwd=tree,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        db = var / "console.sqlite3"
        deadline = time.monotonic() + 120
        while True:  # registered, and the first full sync done
            if agent.poll() is not None:
                raise SystemExit(f"{label}: the agent exited:\n{log_path.read_text()[-2000:]}")
            try:
                with sqlite3.connect(db) as raw:
                    row = raw.execute(
                        "select last_inventory_sync from console_host where slug='bench'"
                    ).fetchone()
            except sqlite3.Error:
                row = None
            if row and row[0]:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{label}: no first sync")
            time.sleep(0.2)
        time.sleep(2)
        spawned_before = len(count_log.read_text().splitlines()) if count_log.exists() else 0
        cpu_before, t0 = cpu_seconds(agent.pid), time.monotonic()
        log_before = len(log_path.read_text().splitlines())
        time.sleep(seconds)
        cpu_after, t1 = cpu_seconds(agent.pid), time.monotonic()
        lines = count_log.read_text().splitlines() if count_log.exists() else []
        spawned = lines[spawned_before:]
        syncs = [
            float(m.group(1))
            for line in log_path.read_text().splitlines()[log_before:]
            if (m := re.search(r"write transaction ([0-9.]+) ms", line))
        ]
    finally:
        agent.terminate()
        try:
            agent.wait(30)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait(10)
    minutes = (t1 - t0) / 60
    by_tool: dict[str, int] = {}
    for tool in spawned:
        by_tool[tool] = by_tool.get(tool, 0) + 1
    return {
        "processes_per_min": len(spawned) / minutes,
        "by_tool": {k: round(v / minutes) for k, v in sorted(by_tool.items())},
        "cpu_pct": 100 * (cpu_after - cpu_before) / (t1 - t0),
        "write_ms": syncs,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--containers", default="10,40")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--before", help="also measure the code at this git revision")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="console-bench-agent-", dir="/var/tmp"))
    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    redis_url = f"redis://127.0.0.1:{port}/0"
    trees = {"now": ROOT}
    if args.before:
        tree = state / "before-tree"
        tree.mkdir()
        archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
        trees[f"before ({args.before})"] = tree
    results = []
    try:
        for n in [int(x) for x in args.containers.split(",")]:
            lxc_path = state / f"lxc-{n}"
            lxc_path.mkdir()
            make_containers(lxc_path, n)
            try:
                for i, (label, tree) in enumerate(trees.items()):
                    r = run_variant(f"{n}-{i}", tree, lxc_path, state, redis_url, args.seconds)
                    results.append((n, label, r))
            finally:
                for cfg in lxc_path.glob("*/config"):
                    name = cfg.parent.name
                    subprocess.run(["lxc-stop", "-P", str(lxc_path), "-n", name, "-k"], capture_output=True)
                    subprocess.run(
                        ["lxc-destroy", "-P", str(lxc_path), "-n", name, "-f"], capture_output=True
                    )
    finally:
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(state, ignore_errors=True)
    print(f"agent cost, {args.seconds:g} s window after the first sync, {os.cpu_count()} cores")
    print("running  code                     processes/min  CPU (% of a core)  write transaction per sync")
    for n, label, r in results:
        write = ", ".join(f"{ms:.1f} ms" for ms in r["write_ms"]) or "(not logged)"
        print(f"{n:7d}  {label:23s}  {r['processes_per_min']:13.0f}  {r['cpu_pct']:17.1f}  {write}")
        print(f"         by tool: {r['by_tool']}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
