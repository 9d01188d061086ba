"""Click -> state shown, in Chromium, against the raw lxc-* time in the same run.

The console is served as ``make run`` serves it (``scripts/web``: uvicorn, ``WEB_WORKERS``
processes, default 2) with one agent; Chromium (Debian's, headless, Playwright) opens a busybox
container's page and clicks Start, Freeze, Unfreeze and Stop ``--rounds`` times each. Each figure is
measured in the page: from the button's click to the state panel showing the new state (a
MutationObserver), so it includes the POST, the agent's work, the push of the change and the
panel's refresh. The raw figure is ``lxc-<action>`` alone (it returns at the state; an untimed
``lxc-wait`` checks that) for the same state on a
second container on a path of its own. A second table splits each click into its steps, from a
trace the page records (its htmx requests and stream events) and the operation row's times.

Run as root:  .venv/bin/python bench/click.py [--rounds 10]
It uses its own state directory, Redis (loopback, free port), agent and web server (each ended by
its Popen handle), and destroys every container it makes.
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

# Run as a script, this file's directory comes first on sys.path, where "click" would then name
# this file instead of the package Celery imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import ROOT, ConsoleUnderTest, free_port  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [  # as tests/browser/conftest.py
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Records, in epoch milliseconds, every htmx request (its panel, sent and answered) and every event
# the page's stream delivers for the panels on it, so each click's time can be split into its steps.
TRACE = """() => {
    if (window.__trace) return;
    window.__trace = [];
    const now = () => performance.timeOrigin + performance.now();
    document.addEventListener("htmx:beforeRequest", e => window.__trace.push(
        ["sent", e.detail.elt.closest("[id]")?.id || "", e.detail.requestConfig.verb, now()]));
    document.addEventListener("htmx:afterOnLoad", e => window.__trace.push(
        ["answered", e.detail.elt.closest("[id]")?.id || "", e.detail.requestConfig.verb, now(),
         e.detail.xhr.getResponseHeader("Server-Timing") || ""]));
    window.__listen = () => {
        const source = document.body["htmx-internal-data"].sseEventSource;
        window.__heard = window.__heard || new Set();
        document.querySelectorAll("[hx-trigger*='sse:'], [sse-swap]").forEach(el => {
            for (const m of (el.getAttribute("hx-trigger") || "").matchAll(/sse:([\\w-]+)/g)) {
                if (window.__heard.has(m[1])) continue;
                window.__heard.add(m[1]);
                source.addEventListener(m[1], () => window.__trace.push(["event", m[1], "", now()]));
            }
        });
    };
}"""

# Click the state panel's button (once it is enabled: no operation active) and resolve with the
# milliseconds until the panel shows ``wanted``.
CLICK = """async ([label, wanted]) => {
    const find = () => [...document.querySelectorAll("#container-state button")]
        .find(b => b.textContent.trim() === label && !b.disabled);
    for (let i = 0; !find(); i++) {
        if (i > 600) throw new Error("no enabled " + label + " button");
        await new Promise(r => setTimeout(r, 50));
    }
    const shown = () => {
        const s = document.querySelector("#container-state dd.state");
        return s && s.textContent.trim().startsWith(wanted);
    };
    return await new Promise((resolve, reject) => {
        let t0 = 0;
        const obs = new MutationObserver(() => {
            if (shown()) {
                obs.disconnect();
                const t = performance.now();
                window.__trace.push(["shown", "", "", performance.timeOrigin + t]);
                resolve(t - t0);
            }
        });
        obs.observe(document.body, {subtree: true, childList: true, characterData: true});
        setTimeout(() => { obs.disconnect(); reject(new Error(wanted + " not shown in 60 s")); }, 60000);
        window.__listen();
        window.__trace.length = 0;
        t0 = performance.now();
        window.__trace.push(["click", "", "", performance.timeOrigin + t0]);
        find().click();
    });
}"""
STEPS = [("Start", "RUNNING"), ("Freeze", "FROZEN"), ("Unfreeze", "RUNNING"), ("Stop", "STOPPED")]
RAW = {
    "Start": (["lxc-start", "-d"], "RUNNING"),
    "Freeze": (["lxc-freeze"], "FROZEN"),
    "Unfreeze": (["lxc-unfreeze"], "RUNNING"),
    "Stop": (["lxc-stop", "-t", "30"], "STOPPED"),
}


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def settle(path: Path, name: str) -> None:
    """Wait for busybox's rcS (udhcpc) to be done: until then its init freezes slowly."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["lxc-info", "-P", str(path), "-n", name, "-iH"], capture_output=True, text=True
        ).stdout
        if out.strip():
            time.sleep(0.5)
            return
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="rounds clicked first and not counted (each web worker's first reads)",
    )
    parser.add_argument(
        "--trace", action="store_true", help="print the last round's page trace of each click"
    )
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="console-bench-click-", dir="/var/tmp"))
    lxc_console, lxc_raw = state / "lxc-console", state / "lxc-raw"
    lxc_console.mkdir()
    lxc_raw.mkdir()
    console = ConsoleUnderTest(state, lxc_console)
    port = free_port()
    # Served as `make run` serves it (scripts/web: uvicorn, WEB_WORKERS processes, default 2).
    web = subprocess.Popen(
        ["scripts/web", "127.0.0.1", str(port)],
        cwd=ROOT,
        env={
            **console.env,
            "ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "VENV_BIN": str(Path(sys.executable).parent),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    raw_monitor = subprocess.Popen(["lxc-monitor", "-P", str(lxc_raw)], stdout=subprocess.DEVNULL)
    shown: dict[str, list[float]] = {label: [] for label, _ in STEPS}
    raw: dict[str, list[float]] = {label: [] for label, _ in STEPS}
    took: dict[str, list[float]] = {f"container.{label.lower()}": [] for label, _ in STEPS}
    traces: dict[str, list[list]] = {label: [] for label, _ in STEPS}
    operations: list[tuple[str, float, float, float]] = []
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's loop runs in this thread
    try:
        console.wait_registered()
        from containers.models import Container

        console.timed_post("/containers/new/", {"host": console.slug, "name": "click", "template": "busybox"})
        container = Container.objects.get(name="click")
        subprocess.run(
            ["lxc-create", "-P", str(lxc_raw), "-n", "click", "-t", "busybox"],
            check=True,
            capture_output=True,
        )
        console.wait_for(lambda: _listening(port), "uvicorn")
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page()
            page.on("dialog", lambda dialog: dialog.accept())
            base = f"http://127.0.0.1:{port}"
            page.goto(f"{base}/login/")
            page.fill("input[name=username]", f"{console.slug}-user")
            page.fill("input[name=password]", "bench-password-123")
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/login/" not in url)
            page.goto(f"{base}/containers/{container.pk}/")
            page.wait_for_function(
                "() => (document.body['htmx-internal-data'].sseEventSource || {}).readyState === 1"
            )
            page.evaluate(TRACE)
            # The first --warmup rounds are not counted: a web worker's first reads of a page
            # import its views and compile its templates (300 ms each here), which a console that
            # has run for a while has done long ago.
            measured_from = time.time()
            for n in range(args.warmup + args.rounds):
                counted = n >= args.warmup
                if n == args.warmup:
                    measured_from = time.time()
                for label, wanted in STEPS:
                    took_ms = page.evaluate(CLICK, [label, wanted])
                    if counted:
                        shown[label].append(took_ms / 1000)
                        traces[label].append(page.evaluate("() => window.__trace.slice()"))
                    if label == "Start":
                        settle(lxc_console, "click")
                    time.sleep(0.3)
                if not counted:
                    continue
                for label, _ in STEPS:
                    argv, wait_state = RAW[label]
                    t = time.perf_counter()
                    subprocess.run([argv[0], "-P", str(lxc_raw), "-n", "click", *argv[1:]], check=True)
                    raw[label].append(time.perf_counter() - t)
                    # Not timed: each tool returns at its state (LXC 3+), as the console's commands do.
                    subprocess.run(
                        ["lxc-wait", "-P", str(lxc_raw), "-n", "click", "-s", wait_state, "-t", "30"],
                        check=True,
                    )
                    if label == "Start":
                        settle(lxc_raw, "click")
            browser.close()
        from console.models import Operation

        for op in Operation.objects.filter(kind__startswith="container.").exclude(kind="container.create"):
            if op.finished_at and op.created_at.timestamp() >= measured_from:
                took[op.kind].append((op.finished_at - op.created_at).total_seconds())
                operations.append(
                    (
                        op.kind,
                        op.created_at.timestamp() * 1000,
                        (op.started_at or op.created_at).timestamp() * 1000,
                        op.finished_at.timestamp() * 1000,
                    )
                )
    finally:
        web.terminate()
        web.wait(30)
        console.close()
        raw_monitor.terminate()
        raw_monitor.wait(10)
        for path in (lxc_console, lxc_raw):
            for cfg in path.glob("*/config"):
                subprocess.run(
                    ["lxc-stop", "-P", str(path), "-n", cfg.parent.name, "-k"], capture_output=True
                )
                subprocess.run(
                    ["lxc-destroy", "-P", str(path), "-n", cfg.parent.name, "-f"], capture_output=True
                )
        shutil.rmtree(state, ignore_errors=True)

    workers = os.environ.get("WEB_WORKERS", "2")
    print(f"\n{args.rounds} rounds on {socket.gethostname()}, Chromium, {workers} web workers, one agent:\n")
    print(
        "| click | state shown | median | p95 | operation (queued -> finished), median | raw lxc-*, median |"
    )
    print("|---|---|---|---|---|---|")
    for label, wanted in STEPS:
        values, ops = shown[label], took[f"container.{label.lower()}"]
        print(
            f"| {label} | {wanted} | {statistics.median(values) * 1000:.0f} ms | {p95(values) * 1000:.0f} ms "
            f"| {statistics.median(ops) * 1000 if ops else float('nan'):.0f} ms "
            f"| {statistics.median(raw[label]) * 1000:.0f} ms |"
        )

    print(
        "\nEach round, click -> shown (ms): "
        + "; ".join(f"{label} " + " ".join(f"{v * 1000:.0f}" for v in shown[label]) for label, _ in STEPS)
    )
    print_breakdown(traces, operations)
    if args.trace:
        for label, _ in STEPS:
            trace = traces[label][-1]
            click = next(t for kind, _e, _v, t, *_ in trace if kind == "click")
            print(f"\n{label}, last round (ms after the click):")
            for kind, elt, verb, t, *timing in trace:
                print(f"  {t - click:7.1f}  {kind:8} {elt} {verb} {' '.join(timing)}")


# The marks of one click, in milliseconds after it, in the order they usually come.
BREAKDOWN = [
    ("POST sent", "htmx: the form's request leaves the page"),
    ("operation row", "the web: session, form, checks, Operation + audit rows (created_at)"),
    ("claimed", "the wake-up through Redis and Celery, the agent's claim (started_at)"),
    ("finished", "the agent: the lxc-* command, read-back, terminal write (finished_at)"),
    ("event in page", "the event that made the panel read itself the last time: publish, relay, stream"),
    ("panel GET sent", "htmx sends the state panel's request"),
    ("panel answered", "the web rendered the panel and it arrived"),
    ("shown", "the new state is in the page"),
]


def split(trace: list, operation: tuple[str, float, float, float]) -> list[float] | None:
    """One click's marks (ms after the click) from its page trace and its operation's row times."""
    _, created, started, finished = operation
    click = next(t for kind, _e, _v, t, *_ in trace if kind == "click")
    shown = next(t for kind, _e, _v, t, *_ in trace if kind == "shown")
    post = next((t for kind, _, verb, t, *_ in trace if kind == "sent" and verb == "post"), None)
    panel = [
        (kind, t)
        for kind, elt, verb, t, *_ in trace
        if kind in ("sent", "answered") and elt == "container-state" and verb == "get" and t <= shown
    ]
    answered = next((t for kind, t in reversed(panel) if kind == "answered"), None)
    sent = next((t for kind, t in reversed(panel) if kind == "sent" and answered and t <= answered), None)
    event = next(
        (t for kind, _e, _v, t, *_ in reversed(trace) if kind == "event" and sent and t <= sent), None
    )
    if None in (post, answered, sent, event):
        return None
    return [t - click for t in (post, created, started, finished, event, sent, answered, shown)]


def print_breakdown(traces: dict[str, list[list]], operations: list[tuple[str, float, float, float]]) -> None:
    print("\nWhere a click's time goes (medians of the rounds, ms after the click):\n")
    labels = [label for label, _ in STEPS if label != "Stop"]
    print("| mark | " + " | ".join(labels) + " | what |")
    print("|---|" + "---|" * len(labels) + "---|")
    columns = []
    for label in labels:
        kind = f"container.{label.lower()}"
        rows = []
        for trace in traces[label]:
            click = next(t for k, _e, _v, t, *_ in trace if k == "click")
            shown = next(t for k, _e, _v, t, *_ in trace if k == "shown")
            ops = [op for op in operations if op[0] == kind and click <= op[1] <= shown]
            steps = split(trace, ops[0]) if ops else None
            if steps:
                rows.append(steps)
        columns.append(
            [statistics.median(col) for col in zip(*rows, strict=True)] or [float("nan")] * len(BREAKDOWN)
        )
    for i, (step, what) in enumerate(BREAKDOWN):
        print(f"| {step} | " + " | ".join(f"{col[i]:.1f}" for col in columns) + f" | {what} |")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    main()
