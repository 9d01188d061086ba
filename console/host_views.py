"""Hosts admin: add a host, its agent's enrolment token, revoking its credentials; the agent's
token exchange (console.enrolment)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from console import enrolment
from console.access import can, get_for_user
from console.choices import ConsoleAction
from console.decorators import audited_post
from console.errors import ServiceError
from console.models import Host
from console.operations import RequestContext


def _agent_page(
    request: HttpRequest,
    host: Host,
    *,
    token: str = "",
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "host": host,
        "token": token,
        "errors": errors or {},
        "values": {"hours": "24", "confirm": "", **(values or {})},
        "waiting": enrolment.unused_tokens(host).first(),
        "enrolments": host.enrolments.all()[:5],
        "applies": enrolment.applies(),
        "console_url": request.build_absolute_uri("/").rstrip("/"),
        "min_hours": enrolment.MIN_HOURS,
        "max_hours": enrolment.MAX_HOURS,
    }
    response = render(request, "console/host_agent.html", context, status=status)
    if token:
        response["Cache-Control"] = "no-store"  # the token is shown once
    return response


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@audited_post(ConsoleAction.HOST_ENROL_TOKEN)
def host_agent(request: HttpRequest, slug: str) -> HttpResponse:
    """The agent's credentials of a host: a new enrolment token, or revoking them. Admins of it."""
    host = get_for_user(Host.objects.all(), request.user, slug=slug)
    if not can(request.user, "admin", host):
        raise PermissionDenied("only admins of the host manage its agent's credentials")
    if request.method != "POST":
        return _agent_page(request, host)
    ctx = RequestContext.from_request(request)
    do = request.POST.get("do", "")
    if do == "token":
        hours = request.POST.get("hours", "")
        try:
            _, token = enrolment.issue_token(actor=request.user, ctx=ctx, host=host, hours=hours)
        except ServiceError as exc:
            return _agent_page(
                request,
                host,
                errors={exc.field or "hours": exc.message},
                values={"hours": hours},
                status=exc.status_code,
            )
        return _agent_page(request, host, token=token)
    if do == "revoke":
        confirm = request.POST.get("confirm", "")
        try:
            done = enrolment.revoke(actor=request.user, ctx=ctx, host=host, confirm=confirm)
        except ServiceError as exc:
            return _agent_page(
                request,
                host,
                errors={exc.field or "confirm": exc.message},
                values={"confirm": confirm},
                status=exc.status_code,
            )
        said = f"The credentials of {host.slug} are revoked"
        if "redis_user" in done:
            said += (
                f": Redis user {done['redis_user']}, "
                f"{done.get('database_connections_ended', 0)} database connection(s) ended"
            )
        messages.success(request, said + ".")
        return redirect("host-agent", slug=host.slug)
    return _agent_page(request, host, errors={"do": "unknown action"}, status=400)


def add_host(request: HttpRequest) -> HttpResponse:
    """A superuser adds a host (the Hosts page's POST): the page of its agent's credentials, with
    the first token."""
    from console.views import host_list_page

    values = {k: request.POST.get(k, "") for k in ("slug", "name", "hours")}
    try:
        host, _, token = enrolment.add_host(
            actor=request.user, ctx=RequestContext.from_request(request), **values
        )
    except ServiceError as exc:
        errors = {exc.field or "slug": exc.message}
        return host_list_page(request, add_errors=errors, add_values=values, status=exc.status_code)
    return _agent_page(request, host, token=token)


@csrf_exempt
@require_POST
def agent_enrol(request: HttpRequest) -> JsonResponse:
    """The agent's exchange of its one-time token for its credentials (no session: the token is
    the proof). JSON in ({"token": ...}), JSON out."""
    token = None
    if request.content_type == "application/json":
        try:
            token = json.loads(request.body or b"{}").get("token", "")
        except (ValueError, AttributeError):
            token = None
    if not isinstance(token, str) or not token or len(token) > 200:
        return JsonResponse({"error": 'send {"token": "<the enrolment token>"}'}, status=400)
    try:
        credentials = enrolment.exchange(token, ip=getattr(request, "client_ip", None))
    except ServiceError as exc:
        return JsonResponse({"error": exc.message}, status=exc.status_code)
    response = JsonResponse(credentials)
    response["Cache-Control"] = "no-store"
    return response
