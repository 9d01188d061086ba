"""Every list page and live endpoint at two inventory sizes: time, queries, worker memory.

Seeds two scratch SQLite databases with ``manage.py seed_demo`` (``--small`` scale, default 0.1,
and scale 1: 10 hosts, 1,000 containers, 200 domains, 20,000 operations, 100,000 audit rows),
then for each starts uvicorn (one worker, its own Redis for the event stream) and over real HTTP,
as ``demo-admin`` (admin of every host) or ``demo-viewer`` (viewer of 3 hosts), times each
endpoint ``--repeat`` times (median, p95: the whole HTTP exchange on loopback, one client, so the
server's time plus well under a millisecond). The event stream is timed to its first bytes. The
queries per request are counted in a separate process (Django's test client on the same data).

At the large size ``--tabs`` open pages then poll their live panels at the fallback rate (the
stream down: one request per tab every 7.5 s) for ``--poll-seconds``, then as many client threads
make ``--requests`` requests each back to back (a stress far above what tabs ask), and the
worker's resident memory is read after each; and times the audit CSV export: first byte, total,
worker peak memory (sampled every 10 ms).

With ``--before REF`` the timings (not the query counts) are also taken for the code at git REF
(``git archive``), on a copy of the same data, in the same run.

    .venv/bin/python bench/pages.py [--small 0.1] [--repeat 20] [--tabs 20] [--requests 100]
                                    [--before REF] [--keep]

Everything runs under a scratch directory in /var/tmp (removed unless --keep); every process it
starts is ended by its own handle.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.audit_export import PASSWORD, Server, Session, measure_export, rss_kib  # noqa: E402
from bench.harness import free_port  # noqa: E402


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str  # formatted with the ids of the seeded objects: {ct} {dom} {op}
    target: str = ""  # HX-Target: the partial a live panel asks for
    user: str = "admin"
    live: bool = False  # refreshed by a pushed event or a slow poll (the sustained run asks these)


ENDPOINTS = [
    Endpoint("hosts", "/hosts/"),
    Endpoint("containers", "/containers/"),
    Endpoint("containers rows (refresh)", "/containers/", "container-rows", live=True),
    Endpoint("containers ?state=RUNNING", "/containers/?state=RUNNING"),
    Endpoint("containers ?host=demo-02&q=ct00", "/containers/?host=demo-02&q=ct00"),
    Endpoint("containers ?page=20", "/containers/?page=20"),
    Endpoint("containers (viewer)", "/containers/", user="viewer"),
    Endpoint("operations", "/operations/"),
    Endpoint("operations rows (refresh)", "/operations/", "operation-rows", live=True),
    Endpoint("operations ?host=demo-02&status=failed", "/operations/?host=demo-02&status=failed"),
    Endpoint("operations ?page=100", "/operations/?page=100"),
    Endpoint("operations (viewer)", "/operations/", user="viewer"),
    Endpoint("storage", "/storage/"),
    Endpoint("networks", "/networks/"),
    Endpoint("audit", "/audit/"),
    Endpoint("audit ?page=100", "/audit/?page=100"),
    Endpoint("audit ?host=demo-02", "/audit/?host=demo-02"),
    Endpoint("audit (viewer)", "/audit/", user="viewer"),
    Endpoint("audit ?page=100 (viewer)", "/audit/?page=100", user="viewer"),
    Endpoint("host page", "/hosts/demo-01/"),
    Endpoint("container page", "/containers/{ct}/"),
    Endpoint("container state (refresh)", "/containers/{ct}/", "container-state", live=True),
    Endpoint("container ops (refresh)", "/containers/{ct}/", "container-ops", live=True),
    Endpoint("domain state (refresh)", "/containers/{dom}/", "container-state", live=True),
    Endpoint("operation card (refresh)", "/operations/{op}/card/", "operation-{op}", live=True),
    Endpoint("event stream, first bytes", "/events/"),
]


def seed(db: Path, state: Path, scale: float) -> float:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "CONSOLE_VAR_DIR": str(state / "var")}
    started = time.perf_counter()
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        # At least 3 hosts: the viewer's three.
        [
            *manage,
            "seed_demo",
            "--scale",
            str(scale),
            "--hosts",
            str(max(3, round(10 * scale))),
            "--password-stdin",
        ],
        cwd=ROOT,
        env=env,
        input=PASSWORD + "\n",
        text=True,
        check=True,
    )
    with sqlite3.connect(db) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.perf_counter() - started


def count_queries(db: Path) -> dict:
    """In a separate process (Django reads its database once): object ids and queries per request."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db}",
        "CONSOLE_VAR_DIR": str(db.parent / "var"),
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "ALLOWED_HOSTS": "testserver",
    }
    out = subprocess.run(
        [sys.executable, __file__, "--count-queries", str(db)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"query count failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)


def _count_queries_here() -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from console.models import Operation
    from containers.models import Container

    ids = {
        "ct": Container.objects.get(host__slug="demo-01", name="ct0000").pk,
        "dom": Container.objects.get(host__slug="demo-01", name="dom000").pk,
        "op": Operation.objects.filter(host__slug="demo-01").order_by("-pk").values_list("pk", flat=True)[0],
    }
    clients = {}
    for who in ("admin", "viewer"):
        clients[who] = Client()
        clients[who].force_login(get_user_model().objects.get(username=f"demo-{who}"))
    queries = {}
    for e in ENDPOINTS:
        headers = {"HX-Request": "true", "HX-Target": e.target.format(**ids)} if e.target else {}
        with CaptureQueriesContext(connection) as ctx:
            response = clients[e.user].get(e.path.format(**ids), headers=headers)
        assert response.status_code in (200, 204, 286), (e.path, response.status_code)
        queries[e.name] = len(ctx.captured_queries)
    print(json.dumps({"ids": ids, "queries": queries}))


def timed(session: Session, e: Endpoint, ids: dict) -> float:
    """Seconds for one request: the whole answer, or for the event stream its first bytes."""
    conn = http.client.HTTPConnection("127.0.0.1", session.port, timeout=60)
    headers = session._headers()
    if e.target:
        headers.update({"HX-Request": "true", "HX-Target": e.target.format(**ids)})
    started = time.perf_counter()
    conn.request("GET", e.path.format(**ids), headers=headers)
    response = conn.getresponse()
    if e.path == "/events/":
        response.read1(64)
    else:
        response.read()
    elapsed = time.perf_counter() - started
    assert response.status in (200, 286), (e.path, response.status)
    conn.close()
    return elapsed


def p95(values: list[float]) -> float:
    values = sorted(values)
    return values[round(0.95 * (len(values) - 1))]


def sustained(server: Server, sessions: dict[str, Session], ids: dict, tabs: int, requests: int) -> dict:
    live = [e for e in ENDPOINTS if e.live]
    before = rss_kib(server.proc.pid)
    times: list[float] = []
    lock = threading.Lock()

    def tab(n: int) -> None:
        mine = []
        for i in range(requests):
            mine.append(timed(sessions["admin" if n % 2 else "viewer-live"], live[(n + i) % len(live)], ids))
        with lock:
            times.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=tab, args=(n,)) for n in range(tabs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    return {
        "requests": len(times),
        "seconds": seconds,
        "median": statistics.median(times),
        "p95": p95(times),
        "rss_before_mb": before / 1024,
        "rss_after_mb": rss_kib(server.proc.pid) / 1024,
        "hwm_mb": rss_kib(server.proc.pid, "VmHWM") / 1024,
    }


def polling_tabs(server: Server, sessions: dict[str, Session], ids: dict, tabs: int, seconds: float) -> dict:
    """``tabs`` open pages whose stream is down, each asking its live panels at their fallback
    rate (one panel every 7.5 s: two panels polling every 15 s), for ``seconds``."""
    live = [e for e in ENDPOINTS if e.live]
    before = rss_kib(server.proc.pid)
    times: list[float] = []
    lock = threading.Lock()
    ends = time.monotonic() + seconds

    def tab(n: int) -> None:
        time.sleep(7.5 * n / tabs)  # the tabs were opened at different moments
        i = 0
        while time.monotonic() < ends:
            took = timed(sessions["admin" if n % 2 else "viewer"], live[(n + i) % len(live)], ids)
            with lock:
                times.append(took)
            i += 1
            time.sleep(max(0.0, 7.5 - took))

    threads = [threading.Thread(target=tab, args=(n,)) for n in range(tabs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "requests": len(times),
        "median": statistics.median(times),
        "p95": p95(times),
        "rss_before_mb": before / 1024,
        "rss_after_mb": rss_kib(server.proc.pid) / 1024,
    }


def run_server(tree: Path, db: Path, state: Path, name: str, ids: dict, args, *, large: bool) -> dict:
    redis_port = free_port()
    redis = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "CONSOLE_VAR_DIR": str(state / "var"),
        "DATABASE_URL": f"sqlite:///{db}",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "AUDIT_EXPORT_MAX_ROWS": "10000000",
        "TRUSTED_PROXIES": "",
        "DJANGO_SETTINGS_MODULE": "console.settings",
    }
    server = Server(tree, env, state / f"uvicorn-{name}.log")
    try:
        sessions = {who: Session(server.port, f"demo-{who}") for who in ("admin", "viewer")}
        # The viewer's live panels of the sustained run: the viewer sees demo-01's objects too.
        sessions["viewer-live"] = sessions["viewer"]
        for e in ENDPOINTS:  # warm up: imports, templates, the connection
            timed(sessions[e.user], e, ids)
        result: dict = {"pages": {}}
        for e in ENDPOINTS:
            runs = [timed(sessions[e.user], e, ids) for _ in range(args.repeat)]
            result["pages"][e.name] = (statistics.median(runs), p95(runs))
        if large:
            result["polling"] = polling_tabs(server, sessions, ids, args.tabs, args.poll_seconds)
            result["sustained"] = sustained(server, sessions, ids, args.tabs, args.requests)
            result["export"] = measure_export(server, sessions["admin"], "csv")
            result["worker_hwm_mb"] = rss_kib(server.proc.pid, "VmHWM") / 1024
    finally:
        server.stop()
        redis.terminate()
        redis.wait(10)
    return result


def report(sizes: dict[str, dict], results: dict[str, dict], tabs: int) -> None:
    print("\n" + " " * 40 + "".join(f"| {key:<31}" for key in results))
    print(" " * 40 + "| median     p95       queries " * len(results))
    for e in ENDPOINTS:
        row = f"{e.name:<40}"
        for key, result in results.items():
            median, high = result["pages"][e.name]
            queries = sizes[key.split(" ")[0]]["queries"][e.name]
            row += f"| {median * 1000:6.1f} ms {high * 1000:6.1f} ms {queries:>5}    "
        print(row)
    for key, result in results.items():
        if "sustained" not in result:
            continue
        s, x, p = result["sustained"], result["export"], result["polling"]
        print(
            f"\n{key}: {tabs} tabs polling their live panels (stream down) for {p['requests']} requests: "
            f"median {p['median'] * 1000:.1f} ms, p95 {p['p95'] * 1000:.1f} ms; "
            f"worker RSS {p['rss_before_mb']:.0f} -> {p['rss_after_mb']:.0f} MB"
        )
        print(
            f"{key}: then {s['requests']} live-panel requests from {tabs} threads at once "
            f"in {s['seconds']:.1f} s "
            f"({s['requests'] / s['seconds']:.0f}/s), median {s['median'] * 1000:.1f} ms, "
            f"p95 {s['p95'] * 1000:.1f} ms; worker RSS {s['rss_before_mb']:.0f} -> {s['rss_after_mb']:.0f} MB"
        )
        print(
            f"{key}: audit CSV export, {x['rows']} rows: first byte {x['first_byte_s']:.3f} s, total "
            f"{x['total_s']:.1f} s, worker RSS {x['rss_before_mb']:.0f} -> {x['rss_peak_mb']:.0f} MB; "
            f"worker peak over the whole run (VmHWM) {result['worker_hwm_mb']:.0f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=float, default=0.1, help="scale of the small inventory (large: 1)")
    parser.add_argument("--large", type=float, default=1.0, help="scale of the large inventory")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--tabs", type=int, default=20)
    parser.add_argument("--requests", type=int, default=100, help="requests per tab in the sustained run")
    parser.add_argument("--poll-seconds", type=float, default=60, help="how long the tabs poll")
    parser.add_argument("--before", help="also time the code at this git revision")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--count-queries", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.count_queries:
        _count_queries_here()
        return

    state = Path(tempfile.mkdtemp(prefix="console-bench-pages-", dir="/var/tmp"))
    try:
        sizes: dict[str, dict] = {}
        for label, scale in (("small", args.small), ("large", args.large)):
            db = state / f"{label}.sqlite3"
            seconds = seed(db, state, scale)
            sizes[label] = {"db": db, **count_queries(db)}
            print(f"seeded the {label} inventory (scale {scale}) in {seconds:.0f} s", flush=True)
        trees = {"now": ROOT}
        if args.before:
            tree = state / "before-tree"
            tree.mkdir()
            archive = subprocess.run(
                ["git", "archive", args.before], cwd=ROOT, capture_output=True, check=True
            )
            subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
            trees = {f"before ({args.before})": tree, "now": ROOT}
        results: dict[str, dict] = {}
        for code, tree in trees.items():
            for label, size in sizes.items():
                db = size["db"]
                if code != "now":
                    db = state / f"{label}-before.sqlite3"
                    shutil.copy(size["db"], db)
                key = f"{label} {code}"
                results[key] = run_server(
                    tree, db, state, key.replace(" ", "-"), size["ids"], args, large=label == "large"
                )
                print(f"measured {key}", flush=True)
        report(sizes, results, args.tabs)
    finally:
        if args.keep:
            print(f"kept {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
