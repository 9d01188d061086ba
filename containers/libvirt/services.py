"""Every change to a libvirt-LXC domain goes through here: validate, authorize, lock, audit, enqueue.

The agent's handlers are in ``containers.libvirt.handlers``. Domains are Container rows with
``backend="libvirt"`` and an empty LXC path; the native ``lxc-*`` actions refuse them and these
functions refuse native containers.
"""

from __future__ import annotations

import os
import uuid
import xml.etree.ElementTree as ET  # building only: the text was parsed safely
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings

from console.errors import Conflict, InvalidInput
from console.identifiers import MAC_PREFIXES, generate_mac, validate_ifname, validate_mac
from console.models import Host, Operation
from console.operations import OperationRequest, RequestContext, active_operation, operation_request
from console.paths import check_place
from console.safe_xml import to_text
from containers.choices import Backend, ContainerAction, DomainOp, State
from containers.libvirt.domain_xml import (
    DomainSpec,
    build_domain_xml,
    check_domain_root,
    macs_in,
    parse_domain_xml,
    validate_abs_path,
    validate_block_device_path,
    validate_domain_document,
    validate_domain_name,
    validate_memory_mib,
    validate_target,
    validate_vcpus,
)
from containers.models import Container, attached_block_devices, container_lock_key
from containers.validators import validate_release
from networks.models import Network
from networks.network_xml import validate_network_name

_RUNNING = {State.RUNNING, State.FROZEN, State.STOPPING}
ACTIONS = {
    # action: (operation kind, role, states it needs or None, message when the state is wrong)
    "start": (DomainOp.START, "operate", {State.STOPPED}, "only a stopped domain can be started"),
    "shutdown": (DomainOp.SHUTDOWN, "operate", {State.RUNNING}, "only a running domain shuts down"),
    "destroy": (DomainOp.DESTROY, "operate", _RUNNING, "the domain is not running"),
    "suspend": (
        DomainOp.SUSPEND,
        "operate",
        {State.RUNNING},
        "only a running domain can be suspended",
    ),
    "resume": (DomainOp.RESUME, "operate", {State.FROZEN}, "only a suspended domain can be resumed"),
    "undefine": (
        DomainOp.UNDEFINE,
        "admin",
        {State.STOPPED, State.UNKNOWN},
        "shut it down or destroy it first: a running domain cannot be undefined",
    ),
    "autostart": (DomainOp.AUTOSTART, "admin", None, ""),
}


def require_libvirt(container: Container) -> None:
    if container.backend != Backend.LIBVIRT:
        raise Conflict(
            f"{container.name} is a native LXC container: use its LXC actions (lxc-start, lxc-stop, ...), "
            "or convert it to a libvirt domain first"
        )


def _host_cpus(host: Host) -> int | None:
    caps = host.capabilities or {}
    cpus = caps.get("cpus") or caps.get("libvirt", {}).get("cpus")
    if isinstance(cpus, int):
        return cpus
    if isinstance(cpus, list):
        return len(cpus)
    import os

    return os.cpu_count()


def _domain_lock(host: Host, name: str) -> str:
    return container_lock_key(host.slug, "", name)


def _check_new_name(host: Host, name: str) -> str:
    name = validate_domain_name(name)
    if Container.objects.filter(host=host, backend=Backend.LIBVIRT, name=name).exists():
        raise Conflict(f"a libvirt domain named {name!r} already exists on host {host.slug}", field="name")
    if active_operation(_domain_lock(host, name)):
        raise Conflict(f"an operation on a domain named {name!r} is already running", field="name")
    return name


def _check_mac_free(host: Host, mac: str, *, but: str = "") -> None:
    for other in Container.objects.filter(host=host, backend=Backend.LIBVIRT).exclude(name=but):
        if mac in macs_in(other.domain_xml):
            raise Conflict(f"the MAC address {mac} is already used by domain {other.name!r}", field="mac")


def define_domain(
    *,
    actor: Any,
    ctx: RequestContext,
    host: Host,
    name: str,
    memory_mib: Any,
    vcpus: Any,
    init: str,
    rootfs: str,
    network: str = "",
    bridge: str = "",
    mac: str = "",
    debootstrap_release: str | None = None,
) -> Operation:
    """Define a domain from the form's values; the agent checks that the rootfs directory exists.

    With ``debootstrap_release`` the agent first builds a Debian root filesystem (the same cached
    debootstrap as native Debian containers) under DOMAIN_ROOTFS_DIR/<name>/rootfs.
    """
    params: dict[str, Any] = {
        "name": name,
        "memory_mib": memory_mib,
        "vcpus": vcpus,
        "init": init,
        "rootfs": rootfs,
        "network": network,
        "bridge": bridge,
        "mac": mac,
    }
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=DomainOp.DEFINE,
        role="admin",
        host=host,
        target=f"container {host.slug}/{name}",
        params=params,
    ) as request:
        name = _check_new_name(host, name)
        spec_mem = validate_memory_mib(memory_mib)
        spec_cpus = validate_vcpus(vcpus, _host_cpus(host))
        init_path = validate_abs_path(init, "init", "the init path")
        build = None
        if debootstrap_release:
            if rootfs:
                raise InvalidInput("choose an existing directory or a Debian build, not both", field="rootfs")
            build = {"release": validate_release(debootstrap_release)}
            if host.capabilities and not host.capabilities.get("debootstrap", {}).get("available"):
                raise InvalidInput(
                    f"debootstrap is not installed on host {host.slug}", field="debootstrap_release"
                )
            rootfs = os.path.join(settings.DOMAIN_ROOTFS_DIR, name, "rootfs")
        rootfs_dir = validate_abs_path(rootfs, "rootfs", "the root filesystem directory")
        if rootfs_dir == "/":
            raise InvalidInput("the host's own / cannot be a container's root filesystem", field="rootfs")
        check_place(rootfs_dir, field="rootfs", what="a root filesystem", directory=True)
        network, bridge = (network or "").strip(), (bridge or "").strip()
        if network and bridge:
            raise InvalidInput("choose a libvirt network or a host bridge, not both", field="network")
        if network:
            network = validate_network_name(network)
            if not Network.objects.filter(host=host, name=network).exists():
                raise InvalidInput(f"host {host.slug} has no libvirt network {network!r}", field="network")
        if bridge:
            bridge = validate_ifname(bridge, "bridge", "the bridge name")
        mac_text = (mac or "").strip()
        if network or bridge:
            mac_text = validate_mac(mac_text) if mac_text else generate_mac(MAC_PREFIXES[0])
            _check_mac_free(host, mac_text)
        elif mac_text:
            raise InvalidInput("a MAC address needs a network or a bridge", field="mac")
        spec = DomainSpec(name, spec_mem, spec_cpus, init_path, rootfs_dir, network, bridge, mac_text)
        xml = build_domain_xml(spec)
        return request.queue(
            target=f"container {host.slug}/{name}",
            lock_key=_domain_lock(host, name),
            params={"name": name, "xml": xml, "rootfs": rootfs_dir, "build": build},
            after={"xml": xml},
            audit_params={**params, "name": name, "mac": mac_text},
        )


def _check_xml_uses(host: Host, xml: str, *, but: str = "") -> str:
    """What pasted or edited domain XML takes on the host: MACs no other domain (but ``but``)
    has, and a root filesystem that is a clean absolute path, never /, /proc, /sys or /dev;
    returns that path."""
    for mac in macs_in(xml):
        _check_mac_free(host, mac, but=but)
    if not parse_domain_xml(xml).rootfs:
        # Without a filesystem mounted at "/", libvirt-LXC gives the domain the host's own /.
        raise InvalidInput(
            "the domain needs a <filesystem type='mount'> whose target dir is '/', naming its root "
            "filesystem directory (without one it would share the host's /)",
            field="xml",
        )
    return check_domain_root(xml, field="xml")


def define_domain_from_xml(*, actor: Any, ctx: RequestContext, host: Host, xml: str) -> Operation:
    """Define a domain from pasted XML (admins): safe parse, type 'lxc', free name and MACs."""
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=ContainerAction.DOMAIN_DEFINE_XML,
        role="admin",
        host=host,
        target=f"host {host.slug}",
        params={"bytes": len(xml.encode()) if isinstance(xml, str) else 0},
    ) as request:
        name, root = validate_domain_document(xml)
        name = _check_new_name(host, name)
        rootfs = _check_xml_uses(host, xml)
        return request.queue(
            kind=DomainOp.DEFINE,
            target=f"container {host.slug}/{name}",
            lock_key=_domain_lock(host, name),
            params={"name": name, "xml": xml, "rootfs": rootfs},
            after={"xml": xml},
            audit_params={"name": name, "source": "xml"},
        )


@contextmanager
def _domain_request(
    *, actor: Any, ctx: RequestContext, container: Container, kind: DomainOp, role: str, params: dict
) -> Iterator[OperationRequest]:
    """:func:`operation_request` on a libvirt domain (a native container is refused)."""
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=kind,
        role=role,
        host=container.host,
        target=container.target,
        params={"name": container.name, **params},
    ) as request:
        require_libvirt(container)
        yield request


def _queue(request: OperationRequest, container: Container, params: dict) -> Operation:
    return request.queue(
        lock_key=container.lock_key,
        params={"name": container.name, **params},
        before={"state": container.state, "autostart": container.autostart},
        audit_params=request.params,
    )


def domain_action(
    *, actor: Any, ctx: RequestContext, container: Container, action: str, enabled: bool | None = None
) -> Operation:
    """start, shutdown, destroy (force off), suspend, resume, undefine, autostart (on/off)."""
    if action not in ACTIONS:
        raise InvalidInput(f"unknown domain action {action!r}")
    kind, role, states, wrong = ACTIONS[action]
    params: dict[str, Any] = {}
    if action == "autostart":
        params["enabled"] = bool(enabled)
    if action == "shutdown":
        params["timeout"] = settings.CONTAINER_STOP_TIMEOUT_SECONDS
    c = container
    with _domain_request(actor=actor, ctx=ctx, container=c, kind=kind, role=role, params=params) as request:
        if states is not None and c.state not in states:
            raise Conflict(f"{c.name} is {c.state.lower()}: {wrong}")
        return _queue(request, c, params)


def attach_disk(
    *, actor: Any, ctx: RequestContext, container: Container, device: str, target: str
) -> Operation:
    """Hot-plug a host block device (e.g. a loop device) into a running domain as ``vdX``."""
    c, params = container, {"device": device, "target": target}
    with _domain_request(
        actor=actor, ctx=ctx, container=c, kind=DomainOp.ATTACH_DISK, role="admin", params=params
    ) as request:
        checked = {"device": validate_block_device_path(device), "target": validate_target(target)}
        if c.state != State.RUNNING:
            raise Conflict(f"{c.name} is {c.state.lower()}: block devices are attached to a running domain")
        if any(d["target"] == checked["target"] for d in parse_domain_xml(c.domain_xml).disks):
            raise Conflict(f"{c.name} already has a disk at {checked['target']}", field="target")
        holder = attached_block_devices(c.host).get(checked["device"])
        if holder:
            raise Conflict(f"{checked['device']} is already attached to domain {holder!r}", field="device")
        return _queue(request, c, checked)


def detach_disk(*, actor: Any, ctx: RequestContext, container: Container, target: str) -> Operation:
    c = container
    with _domain_request(
        actor=actor, ctx=ctx, container=c, kind=DomainOp.DETACH_DISK, role="admin", params={"target": target}
    ) as request:
        checked = validate_target(target)
        disk = next((d for d in parse_domain_xml(c.domain_xml).disks if d["target"] == checked), None)
        if disk is None:
            raise Conflict(f"{c.name} has no disk at {checked}", field="target")
        if c.state not in (State.RUNNING, State.FROZEN):
            raise Conflict(f"{c.name} is {c.state.lower()}: block devices are detached from a running domain")
        return _queue(request, c, {"target": checked, "device": disk["source"]})


def convert_container(*, actor: Any, ctx: RequestContext, container: Container, new_name: str) -> Operation:
    """Run ``domxml-from-native lxc-tools`` on the native container's config (on its agent).

    The operation's result carries the XML (repaired: ``dir:`` prefix, MACs, console), the lines
    libvirt did not convert, and on refusal libvirt's message with what to change. Defining the
    reviewed XML is :func:`define_domain_from_xml`."""
    params: dict[str, Any] = {"new_name": new_name}
    host = container.host
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=DomainOp.CONVERT,
        role="admin",
        host=host,
        target=container.target,
        params={"name": container.name, "lxc_path": container.lxc_path, **params},
    ) as request:
        if container.backend != Backend.LXC:
            raise Conflict(f"{container.name} is already a libvirt domain")
        params["new_name"] = _check_new_name(host, new_name)
        if not container.config_text.strip():
            raise Conflict(
                f"the console has not read {container.name}'s configuration yet; try again shortly"
            )
        return request.queue(
            lock_key=f"{container.lock_key}:read:{uuid.uuid4().hex}",
            params={"name": container.name, "lxc_path": container.lxc_path, **params},
        )


def redefine_domain(
    *, actor: Any, ctx: RequestContext, container: Container, xml: str, base_hash: str
) -> Operation:
    """Edit a stopped domain's definition in place (``virsh edit``): the same name and UUID,
    checked like pasted XML, refused when the definition changed since it was loaded."""
    from containers.lxc_config import config_hash

    size = len(xml.encode()) if isinstance(xml, str) else 0
    with _domain_request(
        actor=actor,
        ctx=ctx,
        container=container,
        kind=DomainOp.REDEFINE,
        role="admin",
        params={"bytes": size},
    ) as request:
        if container.state != State.STOPPED:
            raise Conflict(
                f"{container.name} is {container.state.lower()}: shut it down first, so the definition "
                "you edit is the one it starts with"
            )
        if base_hash != config_hash(container.domain_xml):
            raise Conflict(
                "the definition changed since you loaded it (someone else, or virsh): reload and edit again",
                field="xml",
            )
        name, root = validate_domain_document(xml)
        if name != container.name:
            raise InvalidInput(
                f"the name is {container.name!r}; renaming is not an edit (define a copy instead)",
                field="xml",
            )
        current = parse_domain_xml(container.domain_xml).uuid
        given = (root.findtext("uuid") or "").strip()
        if given and current and given.lower() != current.lower():
            raise InvalidInput(f"the UUID must stay {current}", field="xml")
        if not given and current:
            ET.SubElement(root, "uuid").text = current  # libvirt matches name and UUID
        _check_xml_uses(container.host, xml, but=container.name)
        new_xml = to_text(root) if not given and current else xml
        return request.queue(
            lock_key=container.lock_key,
            params={"name": container.name, "xml": new_xml},
            before={"xml": container.domain_xml},
            after={"xml": new_xml},
            audit_params={"name": container.name, "bytes": size},
        )
