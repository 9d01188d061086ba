"""Every change to a container goes through here: validate, authorize, lock, audit, enqueue."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from console import access
from console.errors import Conflict, InvalidInput, NotFound
from console.models import Host, Operation
from console.operations import RequestContext, audited_refusal, start_operation
from containers.choices import State, Template
from containers.models import Container, container_lock_key
from containers.validators import validate_container_name, validate_lxc_path


def create_container(
    *,
    actor: Any,
    ctx: RequestContext,
    host: Host,
    name: str,
    template: str = Template.BUSYBOX,
    lxc_path: str | None = None,
) -> Operation:
    """Queue ``lxc-create -t TEMPLATE`` for a new container on ``host``."""
    params = {"name": name, "template": template, "lxc_path": lxc_path or host.lxc_path}
    with audited_refusal(
        actor=actor,
        ctx=ctx,
        action="container.create",
        host=host,
        target=f"container {host.slug}/{name}"[:255],
        params=params,
    ):
        access.require(actor, "admin", host)
        name = validate_container_name(name)
        path = validate_lxc_path(lxc_path or host.lxc_path, host.lxc_paths)
        if template not in Template.values:
            raise InvalidInput(f"unknown template {template!r}", field="template")
        installed = host.capabilities.get("lxc", {}).get("templates")
        if installed is not None and template not in installed:
            raise InvalidInput(
                f"the {template} template is not installed on host {host.slug}", field="template"
            )
        if Container.objects.filter(host=host, lxc_path=path, name=name).exists():
            raise Conflict(f"a container named {name!r} already exists on host {host.slug}", field="name")
        params.update(name=name, lxc_path=path)
        return start_operation(
            actor=actor,
            ctx=ctx,
            host=host,
            kind="container.create",
            target=f"container {host.slug}/{name}",
            lock_key=container_lock_key(host.slug, path, name),
            params=params,
        )


def _lifecycle(
    *,
    actor: Any,
    ctx: RequestContext,
    container: Container,
    kind: str,
    role: str,
    params: dict | None = None,
    check: Any = None,
) -> Operation:
    params = {"name": container.name, "lxc_path": container.lxc_path, **(params or {})}
    with audited_refusal(
        actor=actor, ctx=ctx, action=kind, host=container.host, target=container.target, params=params
    ):
        access.require(actor, role, container.host)
        if check is not None:
            check(container)
        return start_operation(
            actor=actor,
            ctx=ctx,
            host=container.host,
            kind=kind,
            target=container.target,
            lock_key=container.lock_key,
            params=params,
            before={"state": container.state, "pid": container.pid},
        )


def start_container(*, actor: Any, ctx: RequestContext, container: Container) -> Operation:
    def check(c: Container) -> None:
        if c.is_running:
            raise Conflict(f"{c.name} is already {c.state.lower()}")

    return _lifecycle(
        actor=actor, ctx=ctx, container=container, kind="container.start", role="operate", check=check
    )


def stop_container(
    *, actor: Any, ctx: RequestContext, container: Container, timeout: int | None = None, force: bool = False
) -> Operation:
    timeout = settings.CONTAINER_STOP_TIMEOUT_SECONDS if timeout is None else timeout

    def check(c: Container) -> None:
        if not isinstance(timeout, int) or not 0 <= timeout <= 3600:
            raise InvalidInput("the stop timeout must be between 0 and 3600 seconds", field="timeout")
        if c.state == State.STOPPED:
            raise Conflict(f"{c.name} is already stopped")

    return _lifecycle(
        actor=actor,
        ctx=ctx,
        container=container,
        kind="container.stop",
        role="operate",
        params={"timeout": timeout, "force": bool(force)},
        check=check,
    )


def destroy_container(
    *, actor: Any, ctx: RequestContext, container: Container, stop_first: bool = False
) -> Operation:
    def check(c: Container) -> None:
        if c.is_running and not stop_first:
            raise Conflict(f"{c.name} is {c.state.lower()}: stop it first, or choose 'stop and destroy'")
        dependants = list(c.copies.values_list("name", flat=True))
        if dependants:
            raise Conflict(f"{c.name} cannot be destroyed: these depend on it: {', '.join(dependants)}")

    return _lifecycle(
        actor=actor,
        ctx=ctx,
        container=container,
        kind="container.destroy",
        role="admin",
        params={"stop_first": bool(stop_first)},
        check=check,
    )


def get_container(pk: int) -> Container:
    container = Container.objects.select_related("host").filter(pk=pk).first()
    if container is None:
        raise NotFound("no such container")
    return container
