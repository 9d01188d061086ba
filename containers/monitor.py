"""Follow ``lxc-monitor`` on every LXC path of the agent's host and refresh rows on state changes.

A container stopped from a shell (``lxc-stop -n web``) shows as STOPPED in the page within
about a second, without waiting for the periodic sync (which stays as the safety net).
"""

from __future__ import annotations

import logging
import subprocess
import threading

from django.db import close_old_connections

from console import busy, events
from console.models import Host
from console.runner import die_with_agent
from containers import signals
from containers.choices import Backend, State
from containers.drivers.lxc import parse_monitor_line
from containers.inventory import refresh_container
from containers.models import Container, container_lock_key

logger = logging.getLogger(__name__)

# States lxc-monitor reports in passing. No lxc-info is run on them: it would query the
# container's monitor process in the middle of the transition (an lxc-info during FREEZING
# makes lxc-freeze fall back to its one-second poll); the stable state that follows refreshes.
_TRANSIENT = {"THAWED", "FREEZING", "STARTING", "STOPPING", "ABORTING"}


def handle_event(host: Host, lxc_path: str, name: str, state: str) -> None:
    """Record a state change at once, then refresh the whole row (PID, IPs, usage) from lxc-info,
    unless an operation on the container does so itself."""
    events.lxc_state_event(host.pk, lxc_path, name, state)  # every line, as lxc-monitor prints it
    # THAWED is not a state a container stays in; ABORTING (a failed start) is always followed by
    # STOPPED, and written late it would overwrite the STOPPED the failed start's refresh read.
    if state in State.values and state not in ("THAWED", "ABORTING"):
        rows = Container.objects.filter(host=host, backend=Backend.LXC, lxc_path=lxc_path, name=name)
        changed = list(rows.exclude(state=state).values_list("pk", flat=True))
        if changed:
            rows.filter(pk__in=changed).update(state=state)
            signals.state_changed(host.pk, changed)
    if state in _TRANSIENT:
        return

    def refresh() -> None:
        try:
            refresh_container(host, lxc_path, name)
        except Exception as exc:  # the container may be gone already; the periodic sync settles it
            logger.info("refresh of %s after %s failed: %s", name, state, exc)

    # An operation of this agent on the container reads it back itself when its action is done:
    # this read waits for that one, and runs after the operation only if that one began before
    # this event (console.busy).
    if not busy.defer(container_lock_key(host.slug, lxc_path, name), "refresh", refresh):
        refresh()


class PathMonitor:
    """One ``lxc-monitor -P PATH`` child process, restarted if it exits, ended by its PID on stop."""

    def __init__(self, host: Host, lxc_path: str, stop: threading.Event) -> None:
        self.host = host
        self.lxc_path = lxc_path
        self.stop = stop
        self.proc: subprocess.Popen | None = None
        self.thread = threading.Thread(target=self._run, name=f"lxc-monitor {lxc_path}", daemon=True)
        self.reaper = threading.Thread(target=self._end_on_stop, name="lxc-monitor reaper", daemon=True)

    def start(self) -> None:
        self.thread.start()
        self.reaper.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.proc = subprocess.Popen(  # argv list
                    ["lxc-monitor", "-P", self.lxc_path],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    stdin=subprocess.DEVNULL,
                    text=True,
                    preexec_fn=die_with_agent,  # even when the agent is killed (SIGKILL)
                )
            except FileNotFoundError:
                logger.error("lxc-monitor is not installed: state changes rely on the periodic sync")
                return
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                event = parse_monitor_line(line)
                if event is None:
                    continue
                try:
                    handle_event(self.host, self.lxc_path, *event)
                finally:
                    close_old_connections()
            self.proc.wait()
            self.stop.wait(1)

    def _end_on_stop(self) -> None:
        self.stop.wait()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()


def start_monitors(host: Host, stop: threading.Event) -> list[PathMonitor]:
    monitors: list[PathMonitor] = []
    for path in host.lxc_paths:
        monitor = PathMonitor(host, path, stop)
        monitor.start()
        monitors.append(monitor)
    return monitors


def start_usage_refresh(host: Host, stop: threading.Event) -> threading.Thread:
    """Keep the lxc-info figures of running containers fresh (every USAGE_REFRESH_SECONDS)."""
    from django.conf import settings

    from containers.inventory import refresh_running

    def run() -> None:
        while not stop.wait(settings.USAGE_REFRESH_SECONDS):
            try:
                refresh_running(host)
            except Exception:
                logger.exception("usage refresh failed")
            finally:
                close_old_connections()

    thread = threading.Thread(target=run, name="usage-refresh", daemon=True)
    thread.start()
    return thread
