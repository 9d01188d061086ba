"""How a restarted agent decides the outcome of a container operation it adopts.

See ``console.recovery`` for the adoption itself (the command that outlived the agent is waited
for first). Each function here reads the host's real state and returns the operation's result,
or cleans up what is half made and raises :class:`ServiceError` with the reason.

=================================  ==============================================================
kind                               recorded outcome
=================================  ==============================================================
start, restart, unfreeze           succeeded if the container is RUNNING, else failed with its state
stop                               succeeded if STOPPED, else failed with its state
freeze                             succeeded if FROZEN, else failed with its state
destroy                            succeeded if the container is gone, else failed
copy, snapshot (``lxc-copy``)      succeeded, linked to its origin, if ``lxc-copy`` exited 0 (or the
                                   handler had passed it) and the copy's config and rootfs exist;
                                   otherwise the half-made copy is destroyed and it failed
create                             succeeded if creating had finished (the last step exited 0 and
                                   the container loads); otherwise the half-made container is
                                   destroyed and it failed
=================================  ==============================================================

Other kinds fail with what is known of their last command (``console.recovery.default_recovery``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from console.errors import ServiceError
from console.models import Operation
from console.recovery import LastCommand, operation_recovery
from console.runner import Runner
from containers.choices import ContainerOp, State, Template
from containers.drivers.lxc import LxcDriver
from containers.inventory import refresh_container

# Progress a handler sets once the host work is done and only recording remains
# (containers.handlers: create at 98, copy at 90).
_CREATED_AT = 98
_COPIED_AT = 90


def _state_recovery(kind: ContainerOp, wanted: str) -> None:
    @operation_recovery(kind)
    def recover(op: Operation, runner: Runner, last: LastCommand | None) -> dict[str, Any]:
        with runner.quiet() as quiet:
            row = refresh_container(op.host, op.params["lxc_path"], op.params["name"], quiet)
        state = row.state if row is not None else "gone"
        runner.log(f"# the container {op.params['name']} is {state} on the host")
        if state != wanted:
            raise ServiceError(f"the container is {state}, not {wanted}")
        return {"container_id": row.pk if row else None, "state": state, "pid": row.pid if row else None}

    recover.__name__ = f"recover_{kind.name.lower()}"


for _kind, _wanted in (
    (ContainerOp.START, State.RUNNING),
    (ContainerOp.RESTART, State.RUNNING),
    (ContainerOp.UNFREEZE, State.RUNNING),
    (ContainerOp.STOP, State.STOPPED),
    (ContainerOp.FREEZE, State.FROZEN),
):
    _state_recovery(_kind, _wanted)


@operation_recovery(ContainerOp.DESTROY)
def recover_destroy(op: Operation, runner: Runner, last: LastCommand | None) -> dict[str, Any]:
    with runner.quiet() as quiet:
        row = refresh_container(op.host, op.params["lxc_path"], op.params["name"], quiet)
    if row is not None:
        raise ServiceError(f"the container still exists ({row.state})")
    return {"container_id": None, "state": None}


def _loads(lxc_path: str, name: str) -> bool:
    base = Path(lxc_path) / name
    return (base / "config").is_file() and (base / "rootfs").exists()


def _remove_half_made(op: Operation, runner: Runner, lxc_path: str, name: str, why: str) -> ServiceError:
    removed = (Path(lxc_path) / name).exists()
    if removed:
        LxcDriver(runner, lxc_path)._remove_half_made(name)
    with runner.quiet() as quiet:
        refresh_container(op.host, lxc_path, name, quiet)  # a sync may have listed it meanwhile
    return ServiceError(f"{why}; the half-made container {name} was removed" if removed else why)


def _finished(op: Operation, last: LastCommand | None, program: str, done_at: int) -> bool:
    """Whether the host work of the operation had ended well: the handler had passed it (its
    progress says so), or its last command was ``program`` and exited 0."""
    if op.progress >= done_at:
        return True
    return last is not None and last.program == program and last.succeeded


@operation_recovery(ContainerOp.COPY, supervised=True)
@operation_recovery(ContainerOp.SNAPSHOT, supervised=True)
def recover_copy(op: Operation, runner: Runner, last: LastCommand | None) -> dict[str, Any]:
    from containers.handlers import record_copy

    new_name, new_path = op.params["new_name"], op.params["new_lxc_path"]
    if not _finished(op, last, "lxc-copy", _COPIED_AT):
        ran = last is not None and last.program == "lxc-copy"
        why = last.describe() if ran and last is not None else "lxc-copy did not finish"
        raise _remove_half_made(op, runner, new_path, new_name, why)
    if not _loads(new_path, new_name):
        why = "lxc-copy exited 0 but the copy has no config or rootfs"
        raise _remove_half_made(op, runner, new_path, new_name, why)
    runner.log(f"# lxc-copy had finished: {new_name} is complete")
    return record_copy(op, runner)


@operation_recovery(ContainerOp.CREATE, supervised=True)
def recover_create(op: Operation, runner: Runner, last: LastCommand | None) -> dict[str, Any]:
    name, lxc_path = op.params["name"], op.params["lxc_path"]
    # A template create is one lxc-create; the others end with the copy into the container.
    final = "lxc-create" if op.params.get("template") not in (Template.DEBIAN, Template.TARBALL) else ""
    last_ok = last is not None and last.program == final and last.succeeded
    done = op.progress >= _CREATED_AT or (bool(final) and last_ok)
    if not done or not _loads(lxc_path, name):
        why = last.describe() if last is not None else "creating had not finished"
        raise _remove_half_made(op, runner, lxc_path, name, why)
    with runner.quiet() as quiet:
        row = refresh_container(op.host, lxc_path, name, quiet)
    if row is None:
        raise ServiceError(f"the container {name} is not on the host")
    return {"container_id": row.pk, "state": row.state, "pid": row.pid}
