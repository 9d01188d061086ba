"""Who may do what. One place answers it, so the teams-and-roles work replaces only this.

Roles, weakest first: ``view`` (see), ``operate`` (lifecycle, snapshots, attach),
``admin`` (create/destroy, storage, networks, limits, hooks, raw config).
Until teams exist: superusers are admins, staff users operators, other users viewers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from console.errors import Forbidden

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    from console.models import Host

ROLES = ("view", "operate", "admin")


def role_on(user: AbstractBaseUser | AnonymousUser, host: Host | None = None) -> str | None:
    """The strongest role ``user`` has on ``host`` (or on every host when None)."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return None
    if user.is_superuser:
        return "admin"
    if user.is_staff:
        return "operate"
    return "view"


def can(user: AbstractBaseUser | AnonymousUser, action: str, host: Host | None = None) -> bool:
    role = role_on(user, host)
    if role is None:
        return False
    return ROLES.index(role) >= ROLES.index(action)


def require(user: AbstractBaseUser | AnonymousUser, action: str, host: Host | None = None) -> None:
    if not can(user, action, host):
        where = f" on host {host.slug}" if host is not None else ""
        raise Forbidden(f"your role does not allow '{action}' actions{where}")
