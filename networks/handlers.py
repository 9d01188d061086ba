"""Agent-side handlers of libvirt network operations."""

from __future__ import annotations

from typing import Any

from console.errors import ServiceError
from console.models import Operation
from console.runner import Runner
from console.tasks import operation_handler, refresh_on_failure
from networks.choices import NetworkOp
from networks.drivers.libvirt import bridge_exists
from networks.inventory import network_driver, refresh_network


def _refresh(op: Operation, runner: Runner) -> dict[str, Any]:
    network = refresh_network(op.host, op.params["name"], runner)
    if network is None:
        return {"network_id": None}
    return {"network_id": network.pk, "active": network.active, "autostart": network.autostart}


@operation_handler(NetworkOp.DEFINE)
def define(op: Operation, runner: Runner) -> dict[str, Any]:
    bridge = op.params["bridge"]
    if bridge_exists(bridge):
        raise ServiceError(f"an interface named {bridge} already exists on host {op.host.slug}; "
                           "choose another bridge name. Nothing was defined")  # fmt: skip
    driver = network_driver(op.host, runner)
    if driver.get(op.params["name"]) is not None:
        raise ServiceError(f"a network named {op.params['name']!r} already exists on host {op.host.slug}")
    op.set_progress(30, "virsh net-define")
    runner.log(op.params["xml"])
    driver.define(op.params["xml"])
    return _refresh(op, runner)


@operation_handler(NetworkOp.START)
def start(op: Operation, runner: Runner) -> dict[str, Any]:
    with refresh_on_failure(lambda: _refresh(op, Runner(None))):
        network_driver(op.host, runner).start(op.params["name"])
    return _refresh(op, runner)


@operation_handler(NetworkOp.STOP)
def stop(op: Operation, runner: Runner) -> dict[str, Any]:
    with refresh_on_failure(lambda: _refresh(op, Runner(None))):
        network_driver(op.host, runner).stop(op.params["name"])
    return _refresh(op, runner)


@operation_handler(NetworkOp.UNDEFINE)
def undefine(op: Operation, runner: Runner) -> dict[str, Any]:
    network_driver(op.host, runner).undefine(op.params["name"])
    return _refresh(op, runner)


@operation_handler(NetworkOp.AUTOSTART)
def autostart(op: Operation, runner: Runner) -> dict[str, Any]:
    network_driver(op.host, runner).set_autostart(op.params["name"], bool(op.params["enabled"]))
    return _refresh(op, runner)


@operation_handler(NetworkOp.DHCP_HOST)
def dhcp_host(op: Operation, runner: Runner) -> dict[str, Any]:
    add = op.params["change"] == "add"
    op.set_progress(
        30, f"virsh net-update {op.params['name']} {'add-last' if add else 'delete'} ip-dhcp-host"
    )
    with refresh_on_failure(lambda: _refresh(op, Runner(None))):
        network_driver(op.host, runner).update_dhcp_host(op.params["name"], op.params["xml"], add=add)
    return _refresh(op, runner)
