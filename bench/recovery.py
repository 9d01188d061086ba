"""Crash recovery in figures: a lost wake-up, an agent killed mid-operation, a double delivery.

1. **Lost message.** The start of a busybox container queued while the web cannot reach Redis
   (the message is lost; the operation stays pending) against the same action with its message:
   seconds from the request until the operation is terminal. The agent runs with the default
   ``AGENT_CLAIM_SECONDS``, so the lost one waits for the next claim round.
2. **Agent restart.** ``--orphans`` containers get a pre-start hook that sleeps; their starts
   are queued, the agent is killed (SIGKILL) while every ``lxc-start`` runs, the commands end
   while it is down, and a new agent is started: seconds from its start until it is registered,
   and until every orphaned operation is settled (with the outcome read from the host).
3. **Double delivery.** With the agent down, a start is queued and its message sent twice more;
   the agent starts: how many times the start ran on the host (its hook counts the runs).

Run as root:  .venv/bin/python bench/recovery.py [--rounds 5] [--orphans 4]
It uses its own state directory, Redis and agent, and destroys every container it makes.
"""

from __future__ import annotations

import argparse
import os
import shutil
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
    parser.add_argument("--orphans", type=int, default=4)
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="console-bench-recovery-", dir="/var/tmp"))
    lxc_path = state / "lxc"
    lxc_path.mkdir()
    console = ConsoleUnderTest(state, lxc_path, slug="bench-recovery")
    try:
        console.wait_registered()
        run(console, state, args.rounds, args.orphans)
    finally:
        console.close()
        for cfg in lxc_path.glob("*/config"):
            name = cfg.parent.name
            subprocess.run(["lxc-stop", "-P", str(lxc_path), "-n", name, "-k"], capture_output=True)
            subprocess.run(["lxc-destroy", "-P", str(lxc_path), "-n", name, "-f"], capture_output=True)
        shutil.rmtree(state, ignore_errors=True)


def run(console: ConsoleUnderTest, state: Path, rounds: int, orphans: int) -> None:
    from django.conf import settings

    from console.celery import app
    from console.models import Host, Operation
    from console.operations import RequestContext
    from containers import services
    from containers.models import Container

    ctx = RequestContext()
    host = Host.objects.get(slug=console.slug)
    admin = __import__("django.contrib.auth", fromlist=["get_user_model"]).get_user_model().objects.first()

    def settled(op: Operation, limit: float = 120) -> Operation:
        deadline = time.monotonic() + limit
        while True:
            op.refresh_from_db()
            if op.is_terminal:
                return op
            if time.monotonic() > deadline:
                raise SystemExit(f"operation #{op.pk} did not end: {op.status} {op.log[-500:]}")
            time.sleep(0.005)

    def make(name: str, hook_seconds: float | None = None) -> tuple[Container, Path]:
        op = settled(services.create_container(actor=admin, ctx=ctx, host=host, name=name))
        assert op.status == "succeeded", op.error
        container = Container.objects.get(host=host, name=name)
        runs = state / f"{name}.runs"
        if hook_seconds is not None:
            script = state / f"{name}.sh"
            script.write_text(f"#!/bin/sh\necho ran >> {runs}\nsleep {hook_seconds}\n")
            script.chmod(0o755)
            with open(Path(container.lxc_path) / name / "config", "a") as config:
                config.write(f"lxc.hook.pre-start = {script}\n")
        return container, runs

    def flip(container: Container, *, lost: bool) -> float:
        """Start the container if it is stopped (stop it first, untimed)."""
        container.refresh_from_db()
        if container.is_running:
            op = settled(services.stop_container(actor=admin, ctx=ctx, container=container))
            assert op.status == "succeeded", op.error + op.log
            container.refresh_from_db()
        action = services.start_container
        broker = app.conf.broker_url
        if lost:
            # Nothing listens there: the message is lost.
            app.conf.broker_url = "redis://127.0.0.1:1/0"  # type: ignore[misc]  # settable, unlike in celery-types
            _reset_pools(app)
        started = time.perf_counter()
        try:
            op = action(actor=admin, ctx=ctx, container=container)
        finally:
            if lost:
                app.conf.broker_url = broker  # type: ignore[misc]  # settable, unlike in celery-types
                _reset_pools(app)
        op = settled(op)
        assert op.status == "succeeded", op.error + op.log
        return time.perf_counter() - started

    # 1. lost message against a delivered one
    flipper, _ = make("rec-flip")
    delivered = [flip(flipper, lost=False) for _ in range(rounds)]
    lost = [flip(flipper, lost=True) for _ in range(rounds)]

    # 2. agent killed while every start runs; the commands end while it is down
    sleepers = [make(f"rec-orphan-{i}", hook_seconds=2) for i in range(orphans)]
    ops = [services.start_container(actor=admin, ctx=ctx, container=c) for c, _ in sleepers]
    deadline = time.monotonic() + 60
    while not all(Operation.objects.get(pk=op.pk).process for op in ops):
        if time.monotonic() > deadline:
            raise SystemExit("the starts did not all run")
        time.sleep(0.02)
    assert console.agent is not None
    console.agent.kill()
    console.agent.wait()
    time.sleep(3)  # every hook (2 s) has ended: the agent finds finished commands to account for
    restarted = time.perf_counter()
    console.start_agent()
    previous_beat = Host.objects.get(pk=host.pk).last_heartbeat
    while Host.objects.get(pk=host.pk).last_heartbeat == previous_beat:
        time.sleep(0.01)
    registered = time.perf_counter() - restarted
    outcomes = [settled(op).status for op in ops]
    all_settled = time.perf_counter() - restarted
    assert outcomes == ["succeeded"] * orphans, outcomes

    # 3. double delivery: the message three times, plus the claim
    doubled, runs = make("rec-double", hook_seconds=0)
    console.agent.terminate()
    console.agent.wait()
    op = services.start_container(actor=admin, ctx=ctx, container=doubled)
    for _ in range(2):
        app.send_task("console.run_operation", args=[op.pk], queue=host.queue_name)
    console.start_agent()
    op = settled(op)
    time.sleep(2 * settings.AGENT_CLAIM_SECONDS)  # every message and two claim rounds had their chance
    ran = len(runs.read_text().splitlines()) if runs.exists() else 0
    started_commands = [c["argv"][0] for c in Operation.objects.get(pk=op.pk).commands].count("lxc-start")

    claim = settings.AGENT_CLAIM_SECONDS
    print(f"crash recovery (AGENT_CLAIM_SECONDS={claim:g}, {rounds} rounds, {os.cpu_count()} cores)")
    print(
        f"  start with its message: median {statistics.median(delivered):.3f} s, max {max(delivered):.3f} s"
    )
    print(
        f"  start whose message was lost: median {statistics.median(lost):.3f} s, "
        f"max {max(lost):.3f} s (bound: {claim:g} s + the start)"
    )
    print(
        f"  agent killed with {orphans} starts running: new agent registered after {registered:.2f} s, "
        f"every orphan settled after {all_settled:.2f} s ({', '.join(outcomes)})"
    )
    print(
        f"  a start delivered 3 times + claimed: ran {ran} time(s) on the host, {started_commands} lxc-start"
    )


def _reset_pools(app) -> None:
    import kombu.pools

    kombu.pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


if __name__ == "__main__":
    main()
