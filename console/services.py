"""Console-level changes: teams, members, role bindings, hosts (superusers only) and the cancel
of a pending operation (the host's admins); audited, in the database only."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from console import access
from console.choices import ConsoleAction, OperationStatus
from console.errors import Conflict, InvalidInput, NotFound
from console.models import Host, Operation, RoleBinding, Team
from console.operations import RequestContext, operation_request

_TEAM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$")


def create_team(*, actor: Any, ctx: RequestContext, name: str) -> Team:
    params = {"name": name}
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=ConsoleAction.TEAM_CREATE,
        role="super",
        host=None,
        target=f"team {name}",
        params=params,
    ) as request:
        name = (name or "").strip()
        if not _TEAM_RE.fullmatch(name):
            raise InvalidInput("a team name is 1-100 letters, digits, spaces, '.', '_' or '-'", field="name")
        if Team.objects.filter(name__iexact=name).exists():
            raise Conflict(f"a team named {name!r} exists already", field="name")
        with transaction.atomic():
            team = Team.objects.create(name=name)
            request.done(target=f"team {name}", after={"name": name})
        return team


def delete_team(*, actor: Any, ctx: RequestContext, team: Team) -> None:
    params = {"team": team.name}
    with (
        operation_request(
            actor=actor,
            ctx=ctx,
            kind=ConsoleAction.TEAM_DELETE,
            role="super",
            host=None,
            target=f"team {team.name}",
            params=params,
        ) as request,
        transaction.atomic(),
    ):
        before = {
            "members": sorted(team.members.values_list("username", flat=True)),
            "bindings": [str(b) for b in team.bindings.all()],
        }
        team.delete()
        request.done(before=before)


def add_member(*, actor: Any, ctx: RequestContext, team: Team, username: str) -> None:
    params = {"team": team.name, "username": username}
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=ConsoleAction.TEAM_MEMBER_ADD,
        role="super",
        host=None,
        target=f"team {team.name}",
        params=params,
    ) as request:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise NotFound(f"no user named {username!r}")
        if team.members.filter(pk=user.pk).exists():
            raise Conflict(f"{username} is already in {team.name}")
        with transaction.atomic():
            team.members.add(user)
            request.done()


def remove_member(*, actor: Any, ctx: RequestContext, team: Team, username: str) -> None:
    params = {"team": team.name, "username": username}
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=ConsoleAction.TEAM_MEMBER_REMOVE,
        role="super",
        host=None,
        target=f"team {team.name}",
        params=params,
    ) as request:
        user = team.members.filter(username=username).first()
        if user is None:
            raise NotFound(f"{username!r} is not in {team.name}")
        with transaction.atomic():
            team.members.remove(user)
            request.done()


def grant_role(
    *, actor: Any, ctx: RequestContext, team: Team, role: str, host_slugs: list[str] | None
) -> RoleBinding:
    """Give the team ``role`` on every host (``host_slugs`` None) or on the hosts named."""
    params = {"team": team.name, "role": role, "hosts": host_slugs if host_slugs is not None else "all"}
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=ConsoleAction.TEAM_ROLE_GRANT,
        role="super",
        host=None,
        target=f"team {team.name}",
        params=params,
    ) as request:
        if role not in access.ROLES:
            raise InvalidInput(f"unknown role {role!r}; one of {', '.join(access.ROLES)}", field="role")
        hosts: list[Host] = []
        if host_slugs is not None:
            hosts = list(Host.objects.filter(slug__in=host_slugs))
            unknown = sorted(set(host_slugs) - {h.slug for h in hosts})
            if unknown or not host_slugs:
                raise InvalidInput(
                    f"unknown host(s): {', '.join(unknown)}" if unknown else "choose hosts or all hosts",
                    field="hosts",
                )
        with transaction.atomic():
            binding = RoleBinding.objects.create(team=team, role=role, all_hosts=host_slugs is None)
            binding.hosts.set(hosts)
            request.done(after=str(binding))
        return binding


def revoke_role(*, actor: Any, ctx: RequestContext, binding: RoleBinding) -> None:
    team = binding.team
    params = {"team": team.name, "binding": str(binding)}
    with (
        operation_request(
            actor=actor,
            ctx=ctx,
            kind=ConsoleAction.TEAM_ROLE_REVOKE,
            role="super",
            host=None,
            target=f"team {team.name}",
            params=params,
        ) as request,
        transaction.atomic(),
    ):
        before = str(binding)
        binding.delete()
        request.done(before=before)


_URI_RE = re.compile(r"^(lxc|qemu|test)(\+[a-z]+)?://[A-Za-z0-9._~:/?=&%@-]*$")


def update_host(
    *, actor: Any, ctx: RequestContext, host: Host, name: str, address: str, libvirt_uri: str
) -> Host:
    """Superusers edit a host's display name, address and libvirt URI (the agent owns the rest)."""
    params = {"name": name, "address": address, "libvirt_uri": libvirt_uri}
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=ConsoleAction.HOST_UPDATE,
        role="super",
        host=host,
        target=f"host {host.slug}",
        params=params,
    ) as request:
        name, address, libvirt_uri = (
            (name or "").strip(),
            (address or "").strip(),
            (libvirt_uri or "").strip(),
        )
        if not name or len(name) > 200 or any(ch in name for ch in "\n\r\x00<>"):
            raise InvalidInput("a host name is 1-200 characters on one line", field="name")
        if len(address) > 255 or not re.fullmatch(r"[A-Za-z0-9.:_-]*", address):
            raise InvalidInput("the address is a host name or an IP address", field="address")
        if not _URI_RE.fullmatch(libvirt_uri):
            raise InvalidInput("the libvirt URI looks like lxc:/// or lxc+ssh://host/", field="libvirt_uri")
        with transaction.atomic():
            before = {"name": host.name, "address": host.address, "libvirt_uri": host.libvirt_uri}
            host.name, host.address, host.libvirt_uri = name, address, libvirt_uri
            host.save(update_fields=["name", "address", "libvirt_uri"])
            after = {"name": name, "address": address, "libvirt_uri": libvirt_uri}
            request.done(before=before, after=after)
        return host


def cancel_operation(*, actor: Any, ctx: RequestContext, op: Operation) -> Operation:
    """An operator of the operation's host cancels it.

    Pending: it is cancelled at once, which frees its target's lock; the message or claim that
    comes later finds it cancelled and runs nothing (also the way out of a lock held by an
    operation whose host's agent is offline). Running: its agent ends the running command (its
    process group) within half a second, the driver cleans up what is half made as after a
    failure, and it ends "cancelled"; this needs the agent online."""
    who = getattr(actor, "get_username", lambda: "system")()
    with operation_request(
        actor=actor,
        ctx=ctx,
        kind=ConsoleAction.OPERATION_CANCEL,
        role="operate",
        host=op.host,
        target=f"operation #{op.pk} ({op.kind} on {op.target})",
        params={"operation": op.pk},
    ) as request:
        if op.status == OperationStatus.RUNNING:
            if op.cancel_requested_by:
                raise Conflict(f"operation #{op.pk}: {op.cancel_requested_by} asked to cancel it already")
            if not op.host.agent_online:
                raise Conflict(
                    f"the agent of {op.host.slug} is offline, so nothing can end operation #{op.pk}'s "
                    "command now; its outcome is checked when the agent returns"
                )
            with transaction.atomic():
                if not op.request_cancel(who):
                    raise Conflict(f"operation #{op.pk} has ended meanwhile ({op.status})")
                request.done(
                    before={"status": OperationStatus.RUNNING},
                    after={"status": OperationStatus.RUNNING, "cancel_requested_by": who},
                )
            return op
        if op.status != OperationStatus.PENDING:
            raise Conflict(f"operation #{op.pk} has ended already ({op.status})")
        with transaction.atomic():
            if not op.cancel(f"cancelled by {who} before it ran"):
                raise Conflict(f"operation #{op.pk} started meanwhile ({op.status}); cancel it again")
            request.done(before={"status": OperationStatus.PENDING}, after={"status": op.status})
        return op
