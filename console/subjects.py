"""What an operation is about, as a link on its page: each app resolves the lock keys it makes.

An operation keeps the lock key of its target (``pool:<host>:<name>``, ``network:...``,
``container:<host>:<lxc path>:<name>``); an app registers, for its prefix, a function that finds
the object on the operation's host and returns (label, URL), or (label, None) when the object no
longer exists (a destroyed pool, an undefined network)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.models import Operation

Subject = tuple[str, "str | None"]
RESOLVERS: dict[str, Callable[[Operation, str], Subject | None]] = {}


def register(prefix: str, resolve: Callable[[Operation, str], Subject | None]) -> None:
    """``resolve(op, rest)`` gets the lock key after ``prefix:``."""
    RESOLVERS[prefix] = resolve


def subject_of(op: Operation) -> Subject | None:
    prefix, _, rest = op.lock_key.partition(":")
    resolve = RESOLVERS.get(prefix)
    return resolve(op, rest) if resolve is not None else None
