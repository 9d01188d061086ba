"""Many hosts, by simulation: the database and Redis load of N agents with 200 containers each,
against a PostgreSQL server and a Redis of this run's own on this machine, and what the pages
cost at that size. A benchmark, not a test.

For each size of ``--hosts`` (default 10,25,50) the inventory grows to that many hosts of
``--containers`` rows (default 200; three in four running), then ``--workers`` processes (default 2)
play every host's agent for ``--seconds`` (default 30) with the agent's own code and periods:

* the heartbeat (``UPDATE`` of its host, every ``AGENT_HEARTBEAT_SECONDS``, 5 s) and the claim of
  pending operations (every ``AGENT_CLAIM_SECONDS``, 5 s);
* the usage refresh of running containers (``containers.inventory.refresh_running``, every
  ``USAGE_REFRESH_SECONDS``, 5 s; every running container's CPU time moves, so every row is written);
* the full inventory sync (``sync_host``, every ``INVENTORY_SYNC_SECONDS``, 30 s);
* lxc-monitor events (``containers.monitor.handle_event``): one container per host stops or starts
  every ``--event-seconds`` (default 10 s), its row refreshed and its change pushed to Redis.

Only the host side is simulated: the ``lxc-*`` tools and the cgroup files are replaced by a table
of the simulated host's containers (``SimDriver``, ``SimCgroups``); every database write, query and
Redis publish is the agent's real code. Measured over the window:

* database writes per second: rows inserted, updated and deleted, and transactions committed
  (``pg_stat_database``, differences);
* the container list (``/containers/``, first page, as a superuser, Django's test client in this
  process): server time (median and max of the samples taken during the load) and query count;
  the Hosts page likewise;
* the list refreshes one open container list page is sent: the real event stream
  (``console.stream``) is read by a subscriber in this process and its ``containers`` messages
  counted (each one makes the page fetch the list again);
* Redis: ``used_memory`` after the window, and commands processed per second.

    .venv/bin/python bench/hosts.py [--hosts 10,25,50] [--containers 200] [--seconds 30] [--workers 2]

Needs Debian's ``postgresql`` package (the server is started as the ``postgres`` user under
/var/tmp, with fsync off like the test suite's) and ``redis-server``. Everything it starts is
ended by its own handle; its scratch directories are removed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ comes first on sys.path, where bench/click.py shadows the click package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

PERIODS = {"heartbeat": 5.0, "claim": 5.0, "usage": 5.0, "sync": 30.0}
LIMIT_VALUES = {
    "memory.limit_in_bytes": "max",
    "cpuset.cpus": "0-1",
    "cpu.shares": "100",
    "blkio.weight": "100",
    "pids.max": "max",
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_text(lxc_path: str, name: str) -> str:
    return (
        f"lxc.uts.name = {name}\nlxc.rootfs.path = dir:{lxc_path}/{name}/rootfs\n"
        "lxc.include = /usr/share/lxc/config/common.conf\nlxc.arch = linux64\n"
        "lxc.net.0.type = veth\nlxc.net.0.link = lxcbr0\nlxc.net.0.flags = up\nlxc.net.0.name = eth0\n"
    )


def sim_name(i: int) -> str:
    return f"c{i:04d}"


def sim_pid(host_index: int, i: int) -> int:
    return 100_000 + host_index * 1000 + i


def sim_ip(host_index: int, i: int) -> str:
    return f"10.{host_index // 200}.{host_index % 200}.{i % 250 + 2}"


# --- the simulated hosts (worker side) ----------------------------------------------------------


class SimHost:
    """What ``lxc-ls`` / ``lxc-info`` and the cgroup files would say of one simulated host."""

    def __init__(self, index: int, lxc_path: str, names_states: dict[str, str]) -> None:
        self.index = index
        self.lxc_path = lxc_path
        self.states = dict(names_states)
        self.cpu: dict[str, int] = {name: 0 for name in names_states}

    def info(self, name: str):
        from containers.drivers.lxc import ContainerInfo

        i = int(name[1:])
        state = self.states[name]
        running = state == "RUNNING"
        return ContainerInfo(
            name=name,
            state=state,
            pid=sim_pid(self.index, i) if running else None,
            ips=[sim_ip(self.index, i)] if running else [],
        )

    def usage(self, name: str) -> dict[str, int]:
        self.cpu[name] += random.randint(1_000_000, 50_000_000)
        return {
            "cpu_ns": self.cpu[name],
            "memory_bytes": 8_000_000 + random.randint(0, 4096) * 4096,
            "blkio_bytes": 1_000_000,
            "tx_bytes": self.cpu[name] // 1000,
            "rx_bytes": self.cpu[name] // 900,
        }


SIM_HOSTS: dict[str, SimHost] = {}  # by LXC path
SIM_BY_PID: dict[int, tuple[SimHost, str]] = {}


def install_simulation() -> None:
    """Point the agent's inventory code at the simulated hosts instead of lxc-* and /sys."""
    from containers import inventory
    from containers.drivers.lxc import LxcDriver

    class SimDriver(LxcDriver):
        def _sim(self) -> SimHost:
            return SIM_HOSTS[self.lxc_path]

        def list(self, pids=None):
            sim = self._sim()
            return [sim.info(name) for name in sim.states]

        def info(self, name: str):
            return self._sim().info(name)

        def exists(self, name: str) -> bool:
            return name in self._sim().states

        def read_config(self, name: str) -> str:
            return config_text(self.lxc_path, name)

        def cgroup_get(self, name: str, key: str) -> str | None:
            return LIMIT_VALUES.get(key)

        def load_error(self, name: str) -> str:
            return ""

    def usage(pid: int, name: str, interface: str = "eth0") -> dict[str, int] | None:
        found = SIM_BY_PID.get(pid)
        return found[0].usage(found[1]) if found else None

    from containers.drivers import cgroupfs

    inventory.LxcDriver = SimDriver  # type: ignore[misc]
    inventory.cgroupfs = SimpleNamespace(  # type: ignore[assignment]
        container_dirs=lambda pid, name: None,
        usage=usage,
        cgroup_value=lambda *a: None,
        ordered=cgroupfs.ordered,
    )


def worker(slugs: list[str], seconds: float, event_seconds: float, seed: int) -> dict[str, Any]:
    """Play the agents of ``slugs`` for ``seconds``; what was done, and how late."""
    import django

    django.setup()
    install_simulation()
    from django.db import close_old_connections
    from django.utils import timezone

    from console.models import Host, Operation
    from containers.inventory import refresh_running, sync_host
    from containers.models import Container
    from containers.monitor import handle_event

    rng = random.Random(seed)
    hosts = list(Host.objects.filter(slug__in=slugs))
    for host in hosts:
        index = int(host.slug.removeprefix("sim"))
        states = dict(Container.objects.filter(host=host).values_list("name", "state"))
        sim = SimHost(index, host.lxc_path, states)
        SIM_HOSTS[host.lxc_path] = sim
        for name in states:
            SIM_BY_PID[sim_pid(index, int(name[1:]))] = (sim, name)

    def heartbeat(host: Host) -> None:
        Host.objects.filter(pk=host.pk).update(last_heartbeat=timezone.now(), agent_name=f"sim-{host.slug}")

    def claim(host: Host) -> None:
        list(Operation.objects.claimable(host).values_list("pk", "lock_key")[:50])

    def event(host: Host) -> None:
        sim = SIM_HOSTS[host.lxc_path]
        name = rng.choice(list(sim.states))
        new = "STOPPED" if sim.states[name] == "RUNNING" else "RUNNING"
        sim.states[name] = new
        handle_event(host, host.lxc_path, name, new)

    actions = {
        "heartbeat": heartbeat,
        "claim": claim,
        "usage": refresh_running,
        "sync": sync_host,
        "event": event,
    }
    periods = {**PERIODS, "event": event_seconds}
    start = time.monotonic()
    schedule = [
        (start + rng.uniform(0, periods[kind]), hi, kind) for hi in range(len(hosts)) for kind in actions
    ]
    done = dict.fromkeys(actions, 0)
    seconds_in = dict.fromkeys(actions, 0.0)
    late: list[float] = []
    end = start + seconds
    cpu_before = time.process_time()
    while True:
        schedule.sort()
        due, hi, kind = schedule[0]
        if due >= end:
            break
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        late.append(max(0.0, time.monotonic() - due))
        t0 = time.monotonic()
        actions[kind](hosts[hi])
        seconds_in[kind] += time.monotonic() - t0
        done[kind] += 1
        schedule[0] = (due + periods[kind], hi, kind)
    close_old_connections()
    return {
        "done": done,
        "seconds_in": seconds_in,
        "late_median": statistics.median(late) if late else 0.0,
        "late_max": max(late) if late else 0.0,
        "cpu_seconds": time.process_time() - cpu_before,
    }


# --- the measuring side -------------------------------------------------------------------------


def grow_inventory(hosts: int, per_host: int) -> None:
    """Hosts sim000.. with ``per_host`` containers each, as an agent's sync leaves them."""
    from django.utils import timezone

    from console.models import Host
    from containers.models import Container

    have = Host.objects.filter(slug__startswith="sim").count()
    now = timezone.now()
    for index in range(have, hosts):
        slug = f"sim{index:03d}"
        lxc_path = f"/var/lib/lxc-sim/{slug}"
        host = Host.objects.create(slug=slug, name=slug, lxc_path=lxc_path, last_heartbeat=now)
        rows = []
        for i in range(per_host):
            name = sim_name(i)
            running = i % 4 != 3
            rows.append(
                Container(
                    host=host,
                    name=name,
                    lxc_path=lxc_path,
                    store="dir",
                    rootfs=f"dir:{lxc_path}/{name}/rootfs",
                    state="RUNNING" if running else "STOPPED",
                    pid=sim_pid(index, i) if running else None,
                    ips=[sim_ip(index, i)] if running else [],
                    usage={"cpu_ns": 0} if running else {},
                    config_text=config_text(lxc_path, name),
                    cgroup_live=dict(LIMIT_VALUES) if running else {},
                )
            )
        Container.objects.bulk_create(rows, batch_size=1000)


def pg_counters() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database "
            "WHERE datname = current_database()"
        )
        commits, ins, upd, dele = cur.fetchone()
    return {"commits": commits, "rows": ins + upd + dele, "updated": upd}


def redis_info(client) -> dict[str, int]:
    memory, stats = client.info("memory"), client.info("stats")
    return {"used_memory": memory["used_memory"], "commands": stats["total_commands_processed"]}


class ListRefreshCounter:
    """A page's event stream (``console.stream._relay``, all hosts) read in a thread: how many
    ``containers`` messages (container list refreshes) and events it relays."""

    def __init__(self) -> None:
        self.refreshes = 0
        self.events = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._read()), daemon=True)
        self.thread.start()

    async def _read(self) -> None:
        from console.stream import _relay, _subscribe

        subscribed = await _subscribe()
        assert subscribed is not None, "Redis is not reachable"
        async for chunk in _relay(*subscribed, None):
            self.refreshes += chunk.count("event: containers\n")
            self.events += chunk.count("data: ")
            if self.stop.is_set():
                break

    def close(self) -> None:
        self.stop.set()
        self.thread.join(20)


def measure_page(client, url: str) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.status_code
    return elapsed, len(ctx.captured_queries)


def run_size(args, hosts: int, client, redis_client) -> dict[str, Any]:
    from django.urls import reverse

    grow_inventory(hosts, args.containers)
    slugs = [f"sim{i:03d}" for i in range(hosts)]
    for url in (reverse("containers:list"), reverse("host-list")):  # warm up
        measure_page(client, url)
    counter = ListRefreshCounter()
    time.sleep(0.5)
    pg0, redis0 = pg_counters(), redis_info(redis_client)
    started = time.monotonic()
    procs = []
    for w in range(args.workers):
        share = slugs[w :: args.workers]
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    ",".join(share),
                    "--seconds",
                    str(args.seconds),
                    "--event-seconds",
                    str(args.event_seconds),
                    "--seed",
                    str(w),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    samples: dict[str, list[tuple[float, int]]] = {"list": [], "hosts": []}
    while time.monotonic() - started < args.seconds:
        time.sleep(2.0)
        samples["list"].append(measure_page(client, reverse("containers:list")))
        samples["hosts"].append(measure_page(client, reverse("host-list")))
    reports = []
    for proc in procs:
        out, _ = proc.communicate(timeout=args.seconds + 120)
        if proc.returncode != 0:
            raise SystemExit(f"a worker failed (exit {proc.returncode})")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    window = time.monotonic() - started
    counter.close()
    # The same pages once the load has stopped: what they cost on their own.
    idle = [measure_page(client, reverse("containers:list"))[0] for _ in range(5)]
    idle_hosts = [measure_page(client, reverse("host-list"))[0] for _ in range(5)]
    pg1, redis1 = pg_counters(), redis_info(redis_client)
    done: dict[str, int] = {}
    for report in reports:
        for kind, n in report["done"].items():
            done[kind] = done.get(kind, 0) + n
    expected = {kind: hosts * args.seconds / period for kind, period in PERIODS.items()}
    expected["event"] = hosts * args.seconds / args.event_seconds
    from containers.models import Container

    return {
        "hosts": hosts,
        "containers": Container.objects.count(),
        "window_s": window,
        "db_rows_per_s": (pg1["rows"] - pg0["rows"]) / window,
        "db_commits_per_s": (pg1["commits"] - pg0["commits"]) / window,
        "list_ms_median": statistics.median(t for t, _ in samples["list"]) * 1000,
        "list_ms_max": max(t for t, _ in samples["list"]) * 1000,
        "list_queries": max(q for _, q in samples["list"]),
        "hosts_ms_median": statistics.median(t for t, _ in samples["hosts"]) * 1000,
        "hosts_queries": max(q for _, q in samples["hosts"]),
        "list_idle_ms": statistics.median(idle) * 1000,
        "hosts_idle_ms": statistics.median(idle_hosts) * 1000,
        "list_refreshes_per_s": counter.refreshes / window,
        # What one open container list page costs the web side: its refreshes times their time.
        "list_ms_per_s_per_page": counter.refreshes
        / window
        * statistics.median(t for t, _ in samples["list"])
        * 1000,
        "events_per_s": counter.events / window,
        "redis_used_memory_mb": redis1["used_memory"] / 2**20,
        "redis_commands_per_s": (redis1["commands"] - redis0["commands"]) / window,
        "done_vs_expected": {k: round(done.get(k, 0) / expected[k], 2) for k in expected},
        "late_max_s": max(r["late_max"] for r in reports),
        "worker_cpu_s": sum(r["cpu_seconds"] for r in reports),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", default="10,25,50")
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--event-seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--list-refresh-seconds",
        help="STREAM_LIST_REFRESH_SECONDS for the event stream (0: a list refresh per change, as before)",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        report = worker(args.worker.split(","), args.seconds, args.event_seconds, args.seed)
        print(json.dumps(report))
        return

    from tests.database import PrivateCluster, postgres_bindir

    bindir = postgres_bindir()
    if bindir is None or shutil.which("redis-server") is None:
        raise SystemExit("bench/hosts.py needs Debian's postgresql and redis-server packages")
    scratch = Path(tempfile.mkdtemp(prefix="console-bench-hosts-", dir="/var/tmp"))
    cluster = PrivateCluster(bindir)
    redis_proc = None
    try:
        database_url = cluster.start()
        port = free_port()
        redis_proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        os.environ.update(
            {
                "DATABASE_URL": database_url,
                "REDIS_URL": f"redis://127.0.0.1:{port}/0",
                "CONSOLE_VAR_DIR": str(scratch / "var"),
                "DJANGO_SETTINGS_MODULE": "console.settings",
                "ALLOWED_HOSTS": "testserver",
                "LOG_LEVEL": "WARNING",
                "HOST_WATCH_SECONDS": "0",
            }
        )
        if args.list_refresh_seconds is not None:
            os.environ["STREAM_LIST_REFRESH_SECONDS"] = args.list_refresh_seconds
        import django

        django.setup()
        import redis
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test import Client

        call_command("migrate", verbosity=0)
        redis_client = redis.Redis.from_url(os.environ["REDIS_URL"])
        for _ in range(50):
            try:
                redis_client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        user = get_user_model().objects.create_superuser("bench-hosts", password="bench-password-123")
        client = Client()
        client.force_login(user)
        results = []
        for hosts in [int(h) for h in args.hosts.split(",")]:
            result = run_size(args, hosts, client, redis_client)
            results.append(result)
            print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}))
        print()
        print(
            "| hosts | containers | DB rows written/s | DB commits/s | container list under load: median "
            "(max) ms, queries | container list idle, ms | Hosts page under load / idle, ms, queries | "
            "list refreshes/s per open list page | web ms/s per open list page | events/s | "
            "Redis memory MB | Redis commands/s | agents' work done / due |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in results:
            done = min(r["done_vs_expected"].values())
            cells = [
                str(r["hosts"]),
                f"{r['containers']:,}",
                f"{r['db_rows_per_s']:,.0f}",
                f"{r['db_commits_per_s']:,.0f}",
                f"{r['list_ms_median']:.0f} ({r['list_ms_max']:.0f}), {r['list_queries']}",
                f"{r['list_idle_ms']:.0f}",
                f"{r['hosts_ms_median']:.0f} / {r['hosts_idle_ms']:.0f}, {r['hosts_queries']}",
                f"{r['list_refreshes_per_s']:.1f}",
                f"{r['list_ms_per_s_per_page']:.0f}",
                f"{r['events_per_s']:.1f}",
                f"{r['redis_used_memory_mb']:.1f}",
                f"{r['redis_commands_per_s']:,.0f}",
                f"{done:.0%}",
            ]
            print("| " + " | ".join(cells) + " |")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)
        cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
