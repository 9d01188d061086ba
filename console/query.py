"""Query-string parameters of the list pages, parsed strictly: a bad one is a 400 with a message.

A value that does not parse is never dropped silently (the page would show rows the user did not
ask for) nor allowed to raise deep in the ORM (a 500): :class:`BadParameter` is Django's
``BadRequest``, which ``console.views.bad_request`` (``handler400``) renders with its message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time

from django.core.exceptions import BadRequest
from django.http import HttpRequest
from django.utils import timezone

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})\Z", re.ASCII)
_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?\Z", re.ASCII)
_NUMBER = re.compile(r"[0-9]{1,18}\Z", re.ASCII)


class BadParameter(BadRequest):
    """A query or form parameter that does not parse; its message is shown to the user."""


def moment(name: str, value: str, *, end_of_day: bool = False) -> datetime | None:
    """An aware datetime from ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM[:SS]`` (blank: None).

    A bare date means its first moment, or with ``end_of_day`` its last. Read in the console's
    time zone. Dates that do not exist (``2026-02-30``, ``0000-01-01``) are refused.
    """
    value = value.strip()
    if not value:
        return None
    found = _DATETIME.match(value) or _DATE.match(value)
    problem = f"{name}: '{value[:40]}' is not a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM)"
    if found is None:
        raise BadParameter(problem)
    parts = [int(p) for p in found.groups() if p is not None]
    try:
        if len(parts) == 3:
            result = datetime.combine(date(*parts), time.max if end_of_day else time.min)
        else:
            second = parts[5] if len(parts) == 6 else 0
            result = datetime(parts[0], parts[1], parts[2], parts[3], parts[4], second)
        result = timezone.make_aware(result)
        result.astimezone(UTC)  # the database compares in UTC: the first and last days may not fit
    except (ValueError, OverflowError) as exc:
        raise BadParameter(f"{problem} ({exc})")
    return result


def one_of(name: str, value: str, choices: Iterable[str]) -> str:
    """``value`` if it is blank or one of ``choices``; anything else is refused with the list."""
    allowed = list(choices)
    if value and value not in allowed:
        raise BadParameter(f"{name}: '{value[:40]}' is not one of {', '.join(allowed)}")
    return value


def whole_number(name: str, value: str) -> int:
    """A positive whole number written in ASCII digits."""
    if not _NUMBER.match(value or "") or int(value) < 1:
        raise BadParameter(f"{name}: '{(value or '')[:40]}' is not a whole number from 1")
    return int(value)


def page_number(request: HttpRequest) -> int:
    """The ``page`` parameter (default 1); past the last page the paginator shows the last one."""
    value = request.GET.get("page", "")
    return whole_number("page", value) if value else 1
