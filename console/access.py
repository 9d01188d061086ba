"""Who may do what, in one place: roles per team and host, and the queryset filter every page uses.

Roles, weakest first: ``view`` (see), ``operate`` (lifecycle, snapshots, attach, files,
terminal), ``admin`` (create/destroy, storage, networks, limits, mounts, hooks, raw config).
A user's role on a host is the strongest role of the teams they belong to, bound to all hosts
or to that host. Superusers are admins everywhere and manage teams and hosts.

Objects on hosts where the user has no role are invisible (404); a role too weak for an
action is refused (403).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Q, QuerySet

from console.errors import Forbidden

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser, AnonymousUser

    from console.models import Host

ROLES = ("view", "operate", "admin")


def _active(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_active", False))


def _bindings(user: Any) -> list[tuple[str, bool, set[int]]]:
    """(role, all_hosts, host ids) of every binding of the user's teams, cached on the user object."""
    cached = getattr(user, "_console_bindings", None)
    if cached is not None:
        return cached
    from console.models import RoleBinding

    rows: dict[int, tuple[str, bool, set[int]]] = {}
    for binding_id, role, all_hosts, host_id in RoleBinding.objects.filter(team__members=user).values_list(
        "pk", "role", "all_hosts", "hosts"
    ):
        entry = rows.setdefault(binding_id, (role, all_hosts, set()))
        if host_id is not None:
            entry[2].add(host_id)
    result = list(rows.values())
    user._console_bindings = result
    return result


def role_on(user: AbstractUser | AnonymousUser, host: Host | None = None) -> str | None:
    """The strongest role ``user`` has on ``host``; with no host, the strongest on any host."""
    if not _active(user):
        return None
    if user.is_superuser:
        return "admin"
    best = -1
    for role, all_hosts, host_ids in _bindings(user):
        if host is None or all_hosts or host.pk in host_ids:
            best = max(best, ROLES.index(role))
    return ROLES[best] if best >= 0 else None


def can(user: AbstractUser | AnonymousUser, action: str, host: Host | None = None) -> bool:
    role = role_on(user, host)
    return role is not None and ROLES.index(role) >= ROLES.index(action)


def require(user: AbstractUser | AnonymousUser, action: str, host: Host | None = None) -> None:
    if not can(user, action, host):
        where = f" on host {host.slug}" if host is not None else ""
        raise Forbidden(f"your role does not allow '{action}' actions{where}")


def require_superuser(user: Any) -> None:
    if not (_active(user) and user.is_superuser):
        raise Forbidden("only superusers manage teams and hosts")


def host_filter(user: Any, action: str = "view", field: str = "host") -> Q:
    """A filter for rows whose ``field`` (a Host relation, or "pk" for hosts) the user may ``action`` on."""
    if not _active(user):
        return Q(pk__in=[])
    if user.is_superuser:
        return Q()
    host_ids = hosts_with_role(user, action)
    if host_ids is None:
        return Q(**{f"{field}__isnull": False}) if field != "pk" else Q()
    key = "pk__in" if field == "pk" else f"{field}__in"
    return Q(**{key: sorted(host_ids)})


def hosts_with_role(user: Any, action: str = "view") -> set[int] | None:
    """Ids of the hosts where ``user`` may ``action``; None means every host (superuser, all-hosts role)."""
    if not _active(user):
        return set()
    if user.is_superuser:
        return None
    wanted = ROLES.index(action)
    host_ids: set[int] = set()
    for role, all_hosts, ids in _bindings(user):
        if ROLES.index(role) < wanted:
            continue
        if all_hosts:
            return None
        host_ids |= ids
    return host_ids


def for_user(queryset: QuerySet, user: Any, action: str = "view") -> QuerySet:
    """Restrict any queryset of host-bound objects to what ``user`` may ``action`` on.

    The model names its host relation in ``host_field`` (default "host"; "pk" for Host).
    """
    field = getattr(queryset.model, "host_field", "host")
    return queryset.filter(host_filter(user, action, field))


def get_for_user(queryset: QuerySet, user: Any, **lookup: Any) -> Any:
    """The object, if it lives on a host the user can see; otherwise 404 (never 403: no leak)."""
    from django.shortcuts import get_object_or_404

    return get_object_or_404(for_user(queryset, user, "view"), **lookup)


def forget(user: Any) -> None:
    """Drop the bindings cached on a user object after its teams changed."""
    if hasattr(user, "_console_bindings"):
        del user._console_bindings


def require_post_role(request: Any, role: str, host: Host | None) -> None:
    """Refuse a POST the user's role does not allow before its input is read (403, not 400)."""
    from django.core.exceptions import PermissionDenied

    if request.method == "POST" and not can(request.user, role, host):
        raise PermissionDenied(f"your role does not allow '{role}' actions here")
