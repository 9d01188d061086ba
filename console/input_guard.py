"""NUL characters are refused where a request enters, before any form, service or query sees them.

No name, path, command, script or text the console accepts may contain NUL (``\\x00``), and
PostgreSQL cannot store one at all (text columns refuse the byte, jsonb refuses ``\\u0000``). So
rather than count on every view and every audit row to cope, a request carrying one anywhere
(path, query, form field names and values, cookies, headers) is answered before its view with
HTTP 400 and one clear message, the same on SQLite and PostgreSQL. A refused POST still leaves
its one audit row (under the view's own action), with the NUL shown as U+2400.

It is a ``process_view`` hook, placed after the CSRF check (a forged POST is refused for that,
and writes nothing) and the authentication middleware (so the row names the user). What runs
earlier cannot carry a NUL into a query: the session cookie is checked by console.sessions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

logger = logging.getLogger(__name__)

NUL = "\x00"
# What a NUL becomes where text from elsewhere (command output, an audited value) is stored:
# U+2400 SYMBOL FOR NULL, visible in the pages and exports, storable in every database.
NUL_MARK = "\u2400"


def storable(value: Any) -> Any:
    """``value`` with every NUL in its strings (dict keys too) shown as NUL_MARK; other types as is."""
    if isinstance(value, str):
        return value.replace(NUL, NUL_MARK) if NUL in value else value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(storable(v) for v in value)
    return value


def nul_message(where: str) -> str:
    """The one message for a NUL in a request: names where it was, says nothing accepts it."""
    return f"Refused: {where} contains a NUL character (\\x00), which no input of this console accepts."


def _first_nul(request: HttpRequest) -> str | None:
    """Where the first NUL of the request is, in words for the user; None when there is none."""
    if NUL in request.path:
        return "the address"
    for name, value in request.META.items():
        if name.startswith("HTTP_") and isinstance(value, str) and NUL in value:
            return f"the {name[5:].replace('_', '-').title()} header"
    for name, value in request.COOKIES.items():
        if NUL in name or NUL in value:
            return "a cookie"
    where = _in_fields(request.GET.lists())
    if where is None and request.method == "POST":
        where = _in_fields(request.POST.lists())
    return where


def _in_fields(fields: Iterable[tuple[str, list]]) -> str | None:
    for name, values in fields:
        if NUL in name:
            return "a field name"
        if any(isinstance(v, str) and NUL in v for v in values):
            return f"the field {name!r}"
    return None


class RefuseNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable, args: tuple, kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        where = _first_nul(request)
        if where is None:
            return None
        message = nul_message(where)
        logger.warning(
            "request %s from %s refused: NUL character in %s (%s %s)",
            getattr(request, "request_id", "-"),
            getattr(request, "client_ip", None),
            where,
            request.method,
            # The URL's name, not its path: a path may hold a secret (a password link's token).
            getattr(request.resolver_match, "view_name", "?"),
        )
        if request.method == "POST":
            from console.decorators import record_refused_post

            record_refused_post(request, view, kwargs, message)
        # htmx swaps the fragment where the form's answer goes (4xx are swapped, see base.html).
        if request.headers.get("HX-Request") == "true":
            return render(request, "console/_error.html", {"message": message}, status=400)
        return render(request, "400.html", {"message": message}, status=400)
