"""htmx requests get partials, never whole pages.

A panel polls its object's page for a fragment; once the object is gone (undefined, destroyed,
or no longer visible to the user) Django's answer would be the whole "Not found" page, with its
own navigation bar, swapped into the panel on every poll. The rule, for every polled partial:
an htmx GET for something that no longer exists gets a small partial saying so, with a link to
the list, and status 286 (htmx stops polling). An expired session makes the page go to the login
(HX-Redirect) instead of swapping the login page in. Any other whole page answering an htmx GET
is replaced here by a notice and logged: that is a bug of the view that answered it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.template.loader import render_to_string
from django.utils.http import urlencode
from django_htmx.middleware import HtmxDetails

logger = logging.getLogger(__name__)
STOP_POLLING = 286

# The list a vanished object's panel links back to, by the first word of its path.
LISTS = {
    "containers": ("/containers/", "containers"),
    "storage": ("/storage/", "storage"),
    "networks": ("/networks/", "networks"),
    "operations": ("/operations/", "operations"),
    "hosts": ("/hosts/", "hosts"),
}


class HtmxHttpRequest(HttpRequest):
    """The request type of views that read ``request.htmx`` (set by django_htmx's HtmxMiddleware on
    every request here); only for type checking, as django-htmx documents."""

    htmx: HtmxDetails


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"


def gone(
    request: HttpRequest, headline: str, detail: str = "", *, status: int = STOP_POLLING
) -> HttpResponse:
    """The small partial of a panel whose object is gone; 286 stops its polling."""
    section = request.path.strip("/").split("/", 1)[0]
    list_url, list_name = LISTS.get(section, ("/", "home"))
    html = render_to_string(
        "console/_gone.html",
        {"headline": headline, "detail": detail, "list_url": list_url, "list_name": list_name},
        request=request,
    )
    return HttpResponse(html, status=status)


class HtmxPartialMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not is_htmx(request):
            return response
        login = resolve_url(settings.LOGIN_URL)
        if response.status_code in (301, 302) and response.get("Location", "").startswith(login):
            page = request.headers.get("HX-Current-URL", "")
            redirect = HttpResponse(status=204)
            redirect["HX-Redirect"] = f"{login}?{urlencode({'next': page})}" if page else login
            return redirect
        if (
            request.method == "GET"
            and not response.streaming
            and response.get("Content-Type", "").startswith("text/html")
            and b"<html" in response.content[:2048].lower()
        ):
            logger.error("a whole page answered the htmx request GET %s", request.get_full_path())
            return gone(request, "This panel could not be refreshed.", "Reload the page.")
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_htmx(request) or not isinstance(exception, (Http404, PermissionDenied)):
            return None
        if isinstance(exception, PermissionDenied):
            headline, detail, status = "Your role does not allow this.", str(exception), 403
        else:
            headline, detail, status = "This no longer exists (or you can no longer see it).", "", 404
        # A poll stops; an action (POST) keeps its error status so htmx shows it as an error.
        return gone(request, headline, detail, status=STOP_POLLING if request.method == "GET" else status)
