"""Agent-side handlers of container operations: driver calls, then an inventory refresh."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from console.models import Operation
from console.operations import set_progress
from console.runner import Runner
from console.tasks import operation_handler
from containers.drivers.lxc import LxcDriver
from containers.inventory import refresh_container


def _driver(op: Operation, runner: Runner) -> LxcDriver:
    return LxcDriver(runner, op.params["lxc_path"])


def _refresh(op: Operation, runner: Runner) -> dict[str, Any]:
    container = refresh_container(op.host, op.params["lxc_path"], op.params["name"], runner)
    if container is None:
        return {"container_id": None, "state": None}
    return {"container_id": container.pk, "state": container.state, "pid": container.pid}


@contextmanager
def _refresh_on_failure(op: Operation) -> Iterator[None]:
    """After a failure the inventory must still show what the host really has."""
    try:
        yield
    except Exception:
        with suppress(Exception):  # the original error is what the user needs
            _refresh(op, Runner(None))
        raise


@operation_handler("container.create")
def create(op: Operation, runner: Runner) -> dict[str, Any]:
    driver = _driver(op, runner)
    set_progress(op, 5, f"lxc-create -t {op.params['template']}")
    with _refresh_on_failure(op):
        driver.create(op.params["name"], op.params["template"])
    set_progress(op, 90, "reading the new container's state")
    return _refresh(op, runner)


@operation_handler("container.start")
def start(op: Operation, runner: Runner) -> dict[str, Any]:
    set_progress(op, 10, "lxc-start")
    with _refresh_on_failure(op):
        _driver(op, runner).start(op.params["name"])
    return _refresh(op, runner)


@operation_handler("container.stop")
def stop(op: Operation, runner: Runner) -> dict[str, Any]:
    driver = _driver(op, runner)
    with _refresh_on_failure(op):
        if op.params.get("force"):
            set_progress(op, 10, "lxc-stop -k")
            driver.kill(op.params["name"])
        else:
            set_progress(op, 10, f"lxc-stop (killed after {op.params['timeout']} s)")
            driver.stop(op.params["name"], timeout=int(op.params["timeout"]))
    return _refresh(op, runner)


@operation_handler("container.destroy")
def destroy(op: Operation, runner: Runner) -> dict[str, Any]:
    driver = _driver(op, runner)
    name = op.params["name"]
    with _refresh_on_failure(op):
        if op.params.get("stop_first") and driver.state(name) != "STOPPED":
            set_progress(op, 10, "stopping before destroy")
            driver.stop(name, timeout=30)
        set_progress(op, 50, "lxc-destroy")
        driver.destroy(name)
    return _refresh(op, runner)
