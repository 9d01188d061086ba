"""The audit export and page at scale: first byte, total time and the web worker's memory.

Seeds a scratch SQLite database through the ORM (10 hosts, 20,000 operations with a 1 KiB log
each, ``--rows`` audit rows, default 100,000; then ``prune_audit`` as cron runs it daily),
starts uvicorn (one worker) on it and, over real HTTP as an admin of all hosts, measures for the
CSV and the JSON export: time to the first body byte, total time, bytes, and the worker's
resident memory before and at its peak during the export (sampled from /proc every 10 ms).
Then the audit page's time (median, p95 of 10) for a few filters, as that admin and as a viewer
of 3 hosts, and the page's query count.

With ``--before REF`` the same is measured, in the same run and on a copy of the same data, for
the code at git REF (its tree from ``git archive``; the audit indexes added since are dropped from
its copy of the database).

    .venv/bin/python bench/audit_export.py [--rows 100000] [--before REF] [--keep]

Everything runs under a scratch directory in /var/tmp (removed at the end unless --keep); every
server is ended by its own PID.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import io
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.harness import free_port  # noqa: E402

PASSWORD = "bench-password-123"
NEW_INDEXES = (
    "audit_host_time",
    "audit_host_result",
    "audit_actor_name_time",
    "audit_result_time",
    "audit_actor_time",
)


def seed(rows: int) -> None:
    """The scale of issue 15's measurement, through the ORM (bulk_create: rows are append-only)."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from console.models import AuditEvent, Host, Operation, RoleBinding, Team

    call_command("migrate", verbosity=0)
    rng = random.Random(15)
    hosts = [Host.objects.create(slug=f"h{i}", name=f"host {i}") for i in range(10)]
    User = get_user_model()  # noqa: N806
    admin = User.objects.create_user("bench-admin", password=PASSWORD)
    viewer = User.objects.create_user("bench-viewer", password=PASSWORD)
    users = [admin, viewer, *(User.objects.create_user(f"user{i}", password=None) for i in range(8))]
    team = Team.objects.create(name="admins")
    team.members.add(admin)
    RoleBinding.objects.create(team=team, role="admin", all_hosts=True)
    viewers = Team.objects.create(name="viewers")
    viewers.members.add(viewer)
    RoleBinding.objects.create(team=viewers, role="view").hosts.set(hosts[:3])

    now = timezone.now()
    log = ("$ lxc-start -P /var/lib/lxc -n web\n" + "x" * 60 + "\n") * 11
    ops = [
        Operation(
            kind="container.start",
            actor=rng.choice(users),
            host=rng.choice(hosts),
            target=f"container web{i}",
            lock_key=f"bench:{i}",
            status="succeeded",
            log=log[:1024],
            commands=[{"argv": ["lxc-start", "-n", f"web{i}"], "exit": 0, "seconds": 0.02}],
            created_at=now,
        )
        for i in range(20_000)
    ]
    ops = Operation.objects.bulk_create(ops, batch_size=2000)
    actions = ["container.start", "container.stop", "container.create", "container.config", "team"]
    results = ["accepted", "accepted", "accepted", "succeeded", "refused", "failed"]
    batch = []
    for i in range(rows):
        actor = rng.choice(users)
        batch.append(
            AuditEvent(
                actor=actor,
                actor_name=actor.username,
                created_at=now - timedelta(seconds=rows - i),
                ip=f"192.0.2.{rng.randrange(1, 250)}",
                request_id=f"{i:032x}",
                action=rng.choice(actions),
                host=rng.choice(hosts),
                target=f"container web{i % 5000}",
                params={"name": f"web{i % 5000}", "lxc.start.auto": "1"},
                before={"state": "STOPPED"},
                result=rng.choice(results),
                message="" if i % 7 else "your role does not allow 'admin' actions",
                operation=ops[i % len(ops)] if i % 5 == 0 else None,
            )
        )
        if len(batch) == 5000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)
    # As the daily retention run leaves it (it also refreshes SQLite's planner statistics).
    call_command("prune_audit", days=3650, stdout=open(os.devnull, "w"))  # noqa: SIM115


class Session:
    """A logged-in HTTP client (cookie jar, CSRF token) for one server."""

    def __init__(self, port: int, username: str) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.request("GET", "/login/")
        status, _ = self.request("POST", "/login/", {"username": username, "password": PASSWORD})
        assert status == 302, f"login of {username} answered {status}"

    def _headers(self) -> dict[str, str]:
        headers = {"Host": "127.0.0.1"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return headers

    def _keep_cookies(self, response: http.client.HTTPResponse) -> None:
        for value in response.headers.get_all("Set-Cookie") or []:
            self.cookies.update({k: m.value for k, m in SimpleCookie(value).items()})

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        headers = self._headers()
        body = None
        if form is not None:
            body = urlencode({"csrfmiddlewaretoken": self.cookies.get("csrftoken", ""), **form})
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        self._keep_cookies(response)
        conn.close()
        return response.status, data

    def timed_get(self, path: str) -> tuple[float, float, bytes]:
        """(seconds to the first body byte, seconds in all, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        start = time.perf_counter()
        conn.request("GET", path, headers=self._headers())
        response = conn.getresponse()
        first = response.read(1)
        first_byte = time.perf_counter() - start
        rest = response.read()
        total = time.perf_counter() - start
        assert response.status == 200, (path, response.status)
        conn.close()
        return first_byte, total, first + rest


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class Server:
    """uvicorn, one worker, on a copy of the database, from a given source tree."""

    def __init__(self, tree: Path, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = open(log, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "console.asgi:application", "--host", "127.0.0.1"]
            + ["--port", str(self.port), "--workers", "1", "--no-proxy-headers", "--log-level", "warning"],
            cwd=tree,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                http.client.HTTPConnection("127.0.0.1", self.port, timeout=2).request("HEAD", "/login/")
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"uvicorn did not start: {log.read_text()[-2000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def measure_export(server: Server, session: Session, fmt: str) -> dict:
    base = rss_kib(server.proc.pid)
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(server.proc.pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    first_byte, total, body = session.timed_get(f"/audit/?format={fmt}")
    stop.set()
    sampler.join()
    if fmt == "csv":
        n = sum(1 for _ in csv.reader(io.StringIO(body.decode()))) - 1
    else:
        n = len(json.loads(body)["events"])
    return {
        "first_byte_s": first_byte,
        "total_s": total,
        "mb": len(body) / 1e6,
        "rows": n,
        "rss_before_mb": base / 1024,
        "rss_peak_mb": peak[0] / 1024,
    }


PAGES = {
    "admin": [
        "/audit/",
        "/audit/?host=h3",
        "/audit/?actor=user2",
        "/audit/?result=refused",
        "/audit/?page=100",
    ],
    "viewer": ["/audit/", "/audit/?page=100"],
}


def measure_pages(sessions: dict[str, Session], repeat: int = 10) -> dict[str, tuple[float, float]]:
    timings = {}
    for who, paths in PAGES.items():
        for path in paths:
            runs = sorted(sessions[who].timed_get(path)[1] for _ in range(repeat))
            timings[f"{who} {path}"] = (statistics.median(runs), runs[int(0.95 * (len(runs) - 1))])
    return timings


def page_queries() -> dict[str, int]:
    """Queries per audit page (in this process, on the seeded database)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for username in ("bench-admin", "bench-viewer"):
        client = Client()
        client.force_login(get_user_model().objects.get(username=username))
        for path in PAGES["admin" if username == "bench-admin" else "viewer"]:
            with CaptureQueriesContext(connection) as ctx:
                assert client.get(path, HTTP_HOST="127.0.0.1").status_code == 200
            counts[f"{username.split('-')[1]} {path}"] = len(ctx.captured_queries)
    return counts


def run_variant(name: str, tree: Path, db: Path, state: Path) -> dict:
    env = {
        **os.environ,
        "CONSOLE_VAR_DIR": str(state / "var"),
        "DATABASE_URL": f"sqlite:///{db}",
        "ALLOWED_HOSTS": "127.0.0.1",
        "AUDIT_EXPORT_MAX_ROWS": "10000000",
        "TRUSTED_PROXIES": "",
        "DJANGO_SETTINGS_MODULE": "console.settings",
    }
    server = Server(tree, env, state / f"uvicorn-{name}.log")
    try:
        sessions = {who: Session(server.port, f"bench-{who}") for who in ("admin", "viewer")}
        sessions["admin"].timed_get("/audit/")  # warm up: imports, templates, connection
        result: dict[str, object] = {
            fmt: measure_export(server, sessions["admin"], fmt) for fmt in ("csv", "json")
        }
        result["pages"] = measure_pages(sessions)
        result["worker_peak_mb"] = rss_kib(server.proc.pid, "VmHWM") / 1024
    finally:
        server.stop()
    return result


def report(name: str, result: dict) -> None:
    print(f"\n== {name}")
    print("export  rows     MB     first byte  total    worker RSS before -> peak")
    for fmt in ("csv", "json"):
        r = result[fmt]
        print(
            f"{fmt:<6}  {r['rows']:<7}  {r['mb']:<5.1f}  {r['first_byte_s']:>8.3f} s  {r['total_s']:>6.2f} s"
            f"  {r['rss_before_mb']:.0f} -> {r['rss_peak_mb']:.0f} MB"
        )
    print(f"worker peak RSS over the whole run (VmHWM): {result['worker_peak_mb']:.0f} MB")
    print("audit page (HTTP, 10 runs)                 median     p95")
    for path, (median, p95) in result["pages"].items():
        print(f"  {path:<40} {median * 1000:>6.1f} ms {p95 * 1000:>6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--before", help="also measure the code at this git revision (e.g. a commit of main)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="console-bench-audit-", dir="/var/tmp"))
    db = state / "after.sqlite3"
    try:
        os.environ.update(
            {
                "CONSOLE_VAR_DIR": str(state / "var"),
                "DATABASE_URL": f"sqlite:///{db}",
                "DJANGO_SETTINGS_MODULE": "console.settings",
                "ALLOWED_HOSTS": "127.0.0.1",
            }
        )
        started = time.perf_counter()
        seed(args.rows)
        seconds = time.perf_counter() - started
        print(f"seeded {args.rows} audit rows, 20000 operations in {seconds:.0f} s ({db})")
        queries = page_queries()
        from django.db import connection

        connection.close()
        with sqlite3.connect(db) as raw:
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")

        results = {}
        if args.before:
            tree = state / "before-tree"
            tree.mkdir()
            archive = subprocess.run(
                ["git", "archive", args.before], cwd=ROOT, capture_output=True, check=True
            )
            subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
            before_db = state / "before.sqlite3"
            shutil.copy(db, before_db)
            with sqlite3.connect(before_db) as raw:
                for index in NEW_INDEXES:
                    raw.execute(f'DROP INDEX IF EXISTS "{index}"')
            results[f"before ({args.before})"] = run_variant("before", tree, before_db, state)
        results["after (this tree)"] = run_variant("after", ROOT, db, state)
        for name, result in results.items():
            report(name, result)
        print("\naudit page queries (this tree):", ", ".join(f"{k}: {v}" for k, v in queries.items()))
    finally:
        if args.keep:
            print(f"kept {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
