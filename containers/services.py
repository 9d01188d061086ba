"""Every change to a container goes through here: validate, authorize, lock, audit, enqueue."""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings

from console.errors import Conflict, InvalidInput
from console.identifiers import validate_container_name
from console.models import Host, Operation
from console.operations import OperationRequest, RequestContext, active_operation, operation_request
from containers.choices import Backend, ContainerOp, State, Template
from containers.hooks import validate_hook_type, validate_script
from containers.limits import validate_limit
from containers.lxc_config import (
    LxcConfig,
    config_hash,
    saved_values,
    settings_changes,
    validate_config_text,
    validate_key_value,
)
from containers.models import Container, container_lock_key
from containers.mounts import normalise_roots, system_directories, validate_source, validate_target
from containers.validators import validate_lxc_path, validate_release, validate_tarball_path
from storage.drivers.pool import backing_stores, pool_type
from storage.models import Pool


def create_container(
    *,
    actor: Any,
    ctx: RequestContext,
    host: Host,
    name: str,
    template: str = Template.BUSYBOX,
    lxc_path: str | None = None,
    release: str | None = None,
    tarball: str | None = None,
    backing_store: str | None = None,
    fssize: str | None = None,
) -> Operation:
    """Queue the creation of a container: busybox template, Debian via debootstrap, or a tarball.

    On an LXC path of a btrfs pool the busybox rootfs is a btrfs subvolume (``lxc-create -B btrfs``),
    so ``lxc-copy -s`` makes subvolume snapshots there."""
    params: dict[str, Any] = {"name": name, "template": template, "lxc_path": lxc_path or host.lxc_path}
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=ContainerOp.CREATE,
        role="admin",
        host=host,
        target=f"container {host.slug}/{name}",
        params={**params, "release": release, "tarball": tarball, "backing_store": backing_store},
    ) as request:
        name = validate_container_name(name)
        path = validate_lxc_path(lxc_path or host.lxc_path, host.lxc_paths)
        if template not in Template.values:
            raise InvalidInput(f"unknown template {template!r}", field="template")
        caps = host.capabilities
        if template == Template.BUSYBOX:
            installed = caps.get("lxc", {}).get("templates")
            if installed is not None and "busybox" not in installed:
                raise InvalidInput(
                    f"the busybox template is not installed on host {host.slug}", field="template"
                )
        elif template == Template.DEBIAN:
            params["release"] = validate_release(release or settings.DEBIAN_RELEASE)
            if caps and not caps.get("debootstrap", {}).get("available"):
                raise InvalidInput(f"debootstrap is not installed on host {host.slug}", field="template")
        elif template == Template.TARBALL:
            params["tarball"] = validate_tarball_path(tarball)
        if Container.objects.filter(host=host, lxc_path=path, name=name).exists():
            raise Conflict(f"a container named {name!r} already exists on host {host.slug}", field="name")
        params.update(name=name, lxc_path=path)
        pool = Pool.objects.filter(host=host, lxc_path=path).first()
        store = _backing_store(pool, path, template, backing_store)
        store_params = pool_type(store).container_store(pool, host, fssize=fssize) if pool else {}
        if fssize not in (None, "") and "fssize" not in store_params:
            # Only lxc-create -B lvm reads a size: taking it elsewhere would silently drop it.
            raise InvalidInput(
                f"a logical volume size applies only on an LVM pool's LXC path ({path} makes a "
                f"{store} container); leave it empty",
                field="fssize",
            )
        if store != "dir":
            params["backing_store"] = store
            params.update(store_params)
        return request.queue(
            target=f"container {host.slug}/{name}",
            lock_key=container_lock_key(host.slug, path, name),
            params=params,
        )


def _backing_store(pool: Pool | None, lxc_path: str, template: str, requested: str | None) -> str:
    """``dir``; or, on the LXC path of a pool, the pool's own store unless one is asked for
    (btrfs subvolume, LVM volume or ZFS dataset for busybox, ``dir`` otherwise)."""
    if requested is None:
        return pool_type(pool.kind).default_store(template) if pool is not None else "dir"
    stores = backing_stores()
    if requested not in stores:
        raise InvalidInput(
            f"unknown backing store {requested!r}; choose one of {', '.join(stores)}", field="backing_store"
        )
    if requested != "dir" and (pool is None or pool.kind != requested):
        raise InvalidInput(f"{lxc_path} is not the LXC path of a {requested} pool", field="backing_store")
    if requested != "dir" and template != Template.BUSYBOX:
        raise InvalidInput(
            f"a {requested} backing store is offered for the busybox template", field="backing_store"
        )
    return requested


@contextmanager
def _lxc_request(
    *,
    actor: Any,
    ctx: RequestContext,
    container: Container,
    kind: ContainerOp,
    role: str,
    params: dict | None = None,
) -> Iterator[OperationRequest]:
    """:func:`operation_request` on a native LXC container (a libvirt domain is refused)."""
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=kind,
        role=role,
        host=container.host,
        target=container.target,
        params={"name": container.name, "lxc_path": container.lxc_path, **(params or {})},
    ) as request:
        if container.backend != Backend.LXC:
            raise Conflict(
                f"{container.name} is a libvirt-LXC domain: use its domain actions (virsh start, shutdown, "
                "destroy, ...) on its page; the lxc-* tools do not manage it"
            )
        yield request


def _queue(
    request: OperationRequest,
    container: Container,
    params: dict | None = None,
    *,
    before: Any = None,
    after: Any = None,
    exclusive: bool = True,
) -> Operation:
    """Queue the container's operation: the request's parameters (a script or config text left
    out) in the audit row, ``params`` (what the agent needs, checked) in the operation."""
    return request.queue(
        # Reads (file browsing) do not hold the container's lock.
        lock_key=container.lock_key if exclusive else f"{container.lock_key}:read:{uuid.uuid4().hex}",
        params={"name": container.name, "lxc_path": container.lxc_path, **(params or {})},
        before=before if before is not None else {"state": container.state, "pid": container.pid},
        after=after,
        audit_params={k: v for k, v in request.params.items() if k != "text"},
    )


def _state_action(
    actor: Any, ctx: RequestContext, container: Container, kind: ContainerOp, role: str, refusal: str | None
) -> Operation:
    """A lifecycle action that needs nothing but the right state (``refusal`` says when it is wrong)."""
    with _lxc_request(actor=actor, ctx=ctx, container=container, kind=kind, role=role) as request:
        if refusal:
            raise Conflict(refusal)
        return _queue(request, container)


def start_container(*, actor: Any, ctx: RequestContext, container: Container) -> Operation:
    c = container
    wrong = f"{c.name} is already {c.state.lower()}" if c.is_running else None
    return _state_action(actor, ctx, c, ContainerOp.START, "operate", wrong)


def stop_container(
    *, actor: Any, ctx: RequestContext, container: Container, timeout: int | None = None, force: bool = False
) -> Operation:
    timeout = settings.CONTAINER_STOP_TIMEOUT_SECONDS if timeout is None else timeout
    params = {"timeout": timeout, "force": bool(force)}
    with _lxc_request(
        actor=actor, ctx=ctx, container=container, kind=ContainerOp.STOP, role="operate", params=params
    ) as request:
        if not isinstance(timeout, int) or not 0 <= timeout <= 3600:
            raise InvalidInput("the stop timeout must be between 0 and 3600 seconds", field="timeout")
        if container.state == State.STOPPED:
            raise Conflict(f"{container.name} is already stopped")
        return _queue(request, container, params)


def destroy_container(
    *, actor: Any, ctx: RequestContext, container: Container, stop_first: bool = False
) -> Operation:
    c, params = container, {"stop_first": bool(stop_first)}
    with _lxc_request(
        actor=actor, ctx=ctx, container=c, kind=ContainerOp.DESTROY, role="admin", params=params
    ) as request:
        if c.is_running and not stop_first:
            raise Conflict(f"{c.name} is {c.state.lower()}: stop it first, or choose 'stop and destroy'")
        # Full copies are independent; snapshots need their origin's rootfs.
        dependants = list(c.copies.filter(origin_kind="snapshot").values_list("name", flat=True))
        if dependants:
            raise Conflict(
                f"{c.name} cannot be destroyed: these snapshots depend on it: {', '.join(dependants)}"
            )
        return _queue(request, c, params)


def restart_container(*, actor: Any, ctx: RequestContext, container: Container) -> Operation:
    c = container
    with _lxc_request(
        actor=actor,
        ctx=ctx,
        container=c,
        kind=ContainerOp.RESTART,
        role="operate",
        params={"timeout": settings.CONTAINER_STOP_TIMEOUT_SECONDS},
    ) as request:
        if c.state != State.RUNNING:
            raise Conflict(f"{c.name} is {c.state.lower()}: only a running container can be restarted")
        return _queue(request, c, {"timeout": settings.CONTAINER_STOP_TIMEOUT_SECONDS})


def freeze_container(*, actor: Any, ctx: RequestContext, container: Container) -> Operation:
    c = container
    wrong = None
    if c.state != State.RUNNING:
        wrong = f"{c.name} is {c.state.lower()}: only a running container can be frozen"
    return _state_action(actor, ctx, c, ContainerOp.FREEZE, "operate", wrong)


def unfreeze_container(*, actor: Any, ctx: RequestContext, container: Container) -> Operation:
    c = container
    wrong = f"{c.name} is {c.state.lower()}, not frozen" if c.state != State.FROZEN else None
    return _state_action(actor, ctx, c, ContainerOp.UNFREEZE, "operate", wrong)


def copy_container(
    *,
    actor: Any,
    ctx: RequestContext,
    container: Container,
    new_name: str,
    snapshot: bool,
    new_lxc_path: str | None = None,
) -> Operation:
    """``lxc-copy``: a copy-on-write snapshot (``-s``) or a full copy, into this or another LXC path."""
    c, host = container, container.host
    params: dict[str, Any] = {"new_name": new_name, "snapshot": bool(snapshot)}
    kind = ContainerOp.SNAPSHOT if snapshot else ContainerOp.COPY
    with _lxc_request(actor=actor, ctx=ctx, container=c, kind=kind, role="operate", params=params) as request:
        name = validate_container_name(new_name)
        path = validate_lxc_path(new_lxc_path or c.lxc_path, host.lxc_paths)
        if c.is_running:
            raise Conflict(f"{c.name} is {c.state.lower()}: stop it first, so the copy is consistent")
        if Container.objects.filter(host=host, lxc_path=path, name=name).exists():
            raise Conflict(f"a container named {name!r} already exists on host {host.slug}", field="new_name")
        if active_operation(container_lock_key(host.slug, path, name)):
            raise Conflict(f"an operation on {name!r} is already running", field="new_name")
        return _queue(request, c, {**params, "new_lxc_path": path})


MAX_ATTACH_ARGS = 64


def _attach_argv(command: str, timeout: int) -> list[str]:
    if not isinstance(command, str) or not command.strip():
        raise InvalidInput("a command is required", field="command")
    if "\x00" in command or "\n" in command or "\r" in command:
        raise InvalidInput("the command must be a single line without NUL", field="command")
    if len(command) > 4096:
        raise InvalidInput("the command is longer than 4096 characters", field="command")
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise InvalidInput(f"the command cannot be split into arguments: {exc}", field="command") from None
    if len(argv) > MAX_ATTACH_ARGS:
        raise InvalidInput(f"at most {MAX_ATTACH_ARGS} arguments", field="command")
    if not isinstance(timeout, int) or not 1 <= timeout <= 600:
        raise InvalidInput("the timeout must be between 1 and 600 seconds", field="timeout")
    return argv


def attach_command(
    *, actor: Any, ctx: RequestContext, container: Container, command: str, timeout: int = 60
) -> Operation:
    """Run one command in a running container (``lxc-attach -n NAME -- argv``), no shell involved."""
    c, params = container, {"command": command, "timeout": timeout}
    with _lxc_request(
        actor=actor, ctx=ctx, container=c, kind=ContainerOp.ATTACH, role="operate", params=params
    ) as request:
        argv = _attach_argv(command, timeout)
        if c.state != State.RUNNING:
            raise Conflict(f"{c.name} is {c.state.lower()}: commands run only in a running container")
        return _queue(request, c, {**params, "argv": argv})


def set_config_values(
    *, actor: Any, ctx: RequestContext, container: Container, values: dict[str, str]
) -> Operation | None:
    """Change editable config keys from the Settings form; None when nothing changes.

    A field left as shown changes nothing, an emptied one removes its key, and every wrong field
    is refused at once (``SettingsRefused.errors``); old and new values go into the audit row.
    """
    current = saved_values(LxcConfig(container.config_text))
    with _lxc_request(
        actor=actor, ctx=ctx, container=container, kind=ContainerOp.CONFIG_SET, role="admin"
    ) as request:
        changes = settings_changes(container.config_text, values)
        if not changes:
            return None
        request.params["changes"] = changes
        return _queue(
            request,
            container,
            {"changes": changes},
            before={k: current.get(k, "") for k in values if k in current},
            after=dict(changes),
        )


def replace_config(
    *, actor: Any, ctx: RequestContext, container: Container, text: str, base_hash: str
) -> Operation:
    """Replace the whole config file (admins); refused when it changed since the editor loaded it."""
    c, params = container, {"base_hash": base_hash}
    with _lxc_request(
        actor=actor, ctx=ctx, container=c, kind=ContainerOp.CONFIG_REPLACE, role="admin", params=params
    ) as request:
        new_text = validate_config_text(text)
        if base_hash != config_hash(c.config_text):
            raise Conflict("the configuration changed since you opened the editor; reload it and edit again")
        if new_text == c.config_text:
            raise InvalidInput("nothing to change: the text is the one already saved")
        return _queue(
            request,
            c,
            {**params, "text": new_text},
            before={"config": c.config_text},
            after={"config": new_text},
        )


def _container_path(path: object) -> str:
    if not isinstance(path, str) or not path:
        return "/"
    if "\x00" in path or len(path) > 4096:
        raise InvalidInput("the path must be shorter than 4096 characters and contain no NUL", field="path")
    return "/" + path.lstrip("/")


def _running_for_files(c: Container) -> None:
    if c.state not in (State.RUNNING, State.FROZEN):
        raise Conflict(f"{c.name} is {c.state.lower()}: its filesystem can be browsed only while it runs")


def browse_files(*, actor: Any, ctx: RequestContext, container: Container, path: str) -> Operation:
    """List a directory of the running container through /proc/PID/root (audited read)."""
    with _lxc_request(
        actor=actor,
        ctx=ctx,
        container=container,
        kind=ContainerOp.FILES_LIST,
        role="operate",
        params={"path": path},
    ) as request:
        checked = _container_path(path)
        _running_for_files(container)
        return _queue(request, container, {"path": checked}, exclusive=False)


def read_container_file(*, actor: Any, ctx: RequestContext, container: Container, path: str) -> Operation:
    """Read one file of the running container for download (size-capped, audited)."""
    with _lxc_request(
        actor=actor,
        ctx=ctx,
        container=container,
        kind=ContainerOp.FILES_READ,
        role="operate",
        params={"path": path},
    ) as request:
        checked = _container_path(path)
        if checked == "/":
            raise InvalidInput("choose a file, not the root directory", field="path")
        _running_for_files(container)
        return _queue(request, container, {"path": checked}, exclusive=False)


def set_limit(
    *,
    actor: Any,
    ctx: RequestContext,
    container: Container,
    key: str,
    value: str,
    apply_live: bool = True,
    persist: bool = True,
    persist_if_refused: bool = False,
) -> Operation:
    """Set a cgroup limit live (``lxc-cgroup``), in the config (``lxc.cgroup.KEY``), or both."""
    c = container
    params: dict[str, Any] = {
        "key": key,
        "value": value,
        "apply_live": bool(apply_live),
        "persist": bool(persist),
        "persist_if_refused": bool(persist_if_refused),
    }
    with _lxc_request(
        actor=actor, ctx=ctx, container=c, kind=ContainerOp.LIMIT_SET, role="admin", params=params
    ) as request:
        if not apply_live and not persist:
            raise InvalidInput("choose to apply the limit now, to save it in the config, or both")
        used = c.usage.get("memory_bytes") if apply_live else None
        normal = validate_limit(
            key, value, {"memory_used": used, "host_cpus": c.host.capabilities.get("cpus")}
        )
        if apply_live and c.state != State.RUNNING:
            raise Conflict(f"{c.name} is {c.state.lower()}: a limit can be applied live only while it runs")
        return _queue(
            request,
            c,
            {**params, "value": normal},
            before={"saved": LxcConfig(c.config_text).cgroup_limits.get(key), "live": c.cgroup_live.get(key)},
            after={"value": normal},
        )


def remove_limit(*, actor: Any, ctx: RequestContext, container: Container, key: str) -> Operation:
    """Remove the saved ``lxc.cgroup.KEY`` lines from the config; the live value stays until the
    next start (the kernel has no "unset": a running container keeps what it was given)."""
    c = container
    with _lxc_request(
        actor=actor, ctx=ctx, container=c, kind=ContainerOp.LIMIT_REMOVE, role="admin", params={"key": key}
    ) as request:
        saved = LxcConfig(c.config_text).cgroup_limits
        if not isinstance(key, str) or key not in saved:
            raise Conflict(f"{c.name} has no saved limit {key!r}", field="key")
        return _queue(request, c, {"key": key}, before={"saved": saved[key]}, after={"saved": None})


def autostart_host(
    *, actor: Any, ctx: RequestContext, host: Host, group: str | None = None, all_groups: bool = False
) -> Operation:
    """``lxc-autostart`` on every LXC path of the host: the containers without a group (default),
    one group (``--group G``) or every autostart container (``--all``)."""
    params: dict[str, Any] = {"group": group or "", "all": bool(all_groups)}
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=ContainerOp.HOST_AUTOSTART,
        role="operate",
        host=host,
        target=f"host {host.slug} autostart",
        params=params,
    ) as request:
        if group:
            params["group"] = validate_key_value("lxc.group", group)
            if "," in params["group"]:
                raise InvalidInput("choose one group", field="group")
        return request.queue(lock_key=f"host:{host.slug}:autostart", params=params)


def autostart_plan(host: Host, group: str | None = None, all_groups: bool = False) -> list[Container]:
    """The containers ``lxc-autostart --list`` names, in its order, from the inventory."""
    qs = Container.objects.filter(host=host, autostart=True).order_by("start_order", "name")
    containers = list(qs)
    for c in containers:
        c.host = host  # the page's state badges read it (host offline): not one query each
    if all_groups:
        return containers
    if group:
        # lxc-autostart splits --groups on commas and lists a container sharing any one of them
        # (an empty name, "onboot,", stands for the containers without a group); a container's
        # own group whose name holds a comma can therefore never match.
        wanted = set(group.split(","))
        return [c for c in containers if wanted & set(c.groups) or ("" in wanted and not c.groups)]
    return [c for c in containers if not c.groups]


def set_hook(
    *, actor: Any, ctx: RequestContext, container: Container, hook_type: str, script: str
) -> Operation:
    """Store a hook script next to the container and wire ``lxc.hook.<type>`` (admins: it runs as root)."""
    existing = container.hooks.filter(hook_type=hook_type).first()
    with _lxc_request(
        actor=actor,
        ctx=ctx,
        container=container,
        kind=ContainerOp.HOOK_SET,
        role="admin",
        params={"hook": hook_type},
    ) as request:
        checked = {"hook": validate_hook_type(hook_type), "script": validate_script(script)}
        return _queue(
            request,
            container,
            checked,
            before={
                "script": existing.script if existing else None,
                "path": existing.path if existing else None,
            },
            after={"script": checked["script"]},
        )


def remove_hook(*, actor: Any, ctx: RequestContext, container: Container, hook_type: str) -> Operation:
    c = container
    existing = c.hooks.filter(hook_type=hook_type).first()
    with _lxc_request(
        actor=actor,
        ctx=ctx,
        container=c,
        kind=ContainerOp.HOOK_REMOVE,
        role="admin",
        params={"hook": hook_type},
    ) as request:
        hook = validate_hook_type(hook_type)
        configured = LxcConfig(c.config_text).has(f"lxc.hook.{hook_type}")
        if existing is None and not configured:
            raise Conflict(f"{c.name} has no {hook_type} hook")
        return _queue(request, c, {"hook": hook}, before={"script": existing.script if existing else None})


def add_mount(
    *,
    actor: Any,
    ctx: RequestContext,
    container: Container,
    source: str,
    target: str,
    read_only: bool = True,
    create_target: bool = True,
) -> Operation:
    """Add an ``lxc.mount.entry`` bind mount from an allowed host directory (takes effect at next start)."""
    c = container
    entries = LxcConfig(c.config_text).mount_entries
    with _lxc_request(
        actor=actor,
        ctx=ctx,
        container=c,
        kind=ContainerOp.MOUNT_ADD,
        role="admin",
        params={"source": source, "target": target, "read_only": bool(read_only)},
    ) as request:
        roots = c.host.mount_roots
        checked = {
            "source": validate_source(source, roots),
            "target": validate_target(target),
            "read_only": bool(read_only),
            "roots": roots,
            "create_target": bool(create_target),
        }
        if any(e.target.strip("/") == checked["target"] for e in entries):
            raise Conflict(f"something is already mounted at {checked['target']} in {c.name}", field="target")
        return _queue(request, c, checked, before={"entries": [e.entry for e in entries]})


def remove_mount(*, actor: Any, ctx: RequestContext, container: Container, entry: str) -> Operation:
    c = container
    with _lxc_request(
        actor=actor,
        ctx=ctx,
        container=c,
        kind=ContainerOp.MOUNT_REMOVE,
        role="admin",
        params={"entry": entry},
    ) as request:
        if entry not in [e.entry for e in LxcConfig(c.config_text).mount_entries]:
            raise Conflict(f"{c.name} has no mount entry {entry!r}")
        return _queue(request, c, {"entry": entry})


def set_mount_roots(
    *, actor: Any, ctx: RequestContext, host: Host, roots: list[str], allow_system: bool = False
) -> Operation:
    """The host directories containers may bind-mount. The agent checks that each one exists on
    the host (a directory, not a link to one elsewhere) before it saves the list; system
    directories (/etc, /usr, ...) are refused unless ``allow_system`` says the admin means it."""
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=ContainerOp.HOST_MOUNT_ROOTS,
        role="admin",
        host=host,
        target=f"host {host.slug}",
        params={"roots": roots, "allow_system": bool(allow_system)},
    ) as request:
        normal = normalise_roots(roots)
        system = system_directories(normal)
        if system and not allow_system:
            raise InvalidInput(
                f"{', '.join(system)}: a system directory of the host; a container that bind-mounts it "
                "can change the host. Tick 'allow system directories' to allow it anyway",
                field="roots",
            )
        if normal == sorted(host.mount_roots):
            raise Conflict(f"these are the allowed roots of {host.slug} already", field="roots")
        return request.queue(
            lock_key=f"host:{host.slug}:mount-roots",
            params={"roots": normal},
            before=list(host.mount_roots),
            after=normal,
        )


def set_lxc_system_config(*, actor: Any, ctx: RequestContext, host: Host, key: str, value: str) -> Operation:
    """One of the lxc-* tools' system defaults (``lxc-config``, written to ``/etc/lxc/lxc.conf``):
    the default LXC path, as the seed chapter points it at a pool, or the default VG/zpool of
    ``-B lvm``/``-B zfs``. The console always passes ``-P``: this is for the host's shell users."""
    from containers.drivers.lxc import EDITABLE_SYSTEM_KEYS
    from storage.drivers.zfs import DATASET_RE
    from storage.validators import LVM_NAME_RE

    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=ContainerOp.HOST_LXC_CONF,
        role="admin",
        host=host,
        target=f"host {host.slug}",
        params={"key": key, "value": value},
    ) as request:
        if key not in EDITABLE_SYSTEM_KEYS:
            raise InvalidInput(f"{key!r} is not one of {', '.join(EDITABLE_SYSTEM_KEYS)}", field="key")
        value = str(value or "").strip()
        if key == "lxc.lxcpath":
            value = validate_lxc_path(value, host.lxc_paths)
        elif key.startswith("lxc.bdev.lvm.") and not LVM_NAME_RE.fullmatch(value):
            raise InvalidInput(f"{value!r} is not a volume group or thin pool name", field="value")
        elif key == "lxc.bdev.zfs.root" and (not DATASET_RE.fullmatch(value) or "@" in value):
            raise InvalidInput(f"{value!r} is not a ZFS dataset name", field="value")
        current = (host.capabilities.get("lxc", {}).get("system_config") or {}).get(key)
        if current == value:
            raise Conflict(f"{key} is {value} already on host {host.slug}", field="value")
        return request.queue(
            lock_key=f"lxcconf:{host.slug}",
            params={"key": key, "value": value},
            before={key: current},
            after={key: value},
        )
