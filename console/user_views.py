"""The Users pages (superusers only) and the page a one-time link opens (anyone with the link).

Views parse and render; every change goes through console.user_services.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_otp.plugins.otp_totp.models import TOTPDevice

from console import query, user_services
from console.decorators import audited_post
from console.errors import ServiceError
from console.htmx import HtmxHttpRequest
from console.models import PasswordLink, Team
from console.operations import RequestContext
from console.user_forms import ConfirmForm, LinkPasswordForm, UserCreateForm

STATUSES = {"": "All", "active": "Active", "inactive": "Deactivated"}
_SEARCH_MAX = 150


def _superuser_only(request: HttpRequest) -> None:
    if not request.user.is_superuser:
        raise PermissionDenied("only superusers manage users")


def _annotated(queryset: Any) -> Any:
    """Users with what the pages show, in a fixed number of queries."""
    now = timezone.now()
    return queryset.annotate(
        has_2fa=Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)),
        has_link=Exists(
            PasswordLink.objects.filter(
                user=OuterRef("pk"), used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
            )
        ),
    ).prefetch_related("console_teams")


@require_safe
@login_required
def user_list(request: HtmxHttpRequest) -> HttpResponse:
    _superuser_only(request)
    q = request.GET.get("q", "").strip()
    if len(q) > _SEARCH_MAX or any(ord(ch) < 32 or ord(ch) == 127 for ch in q):
        raise query.BadParameter(f"q: search for at most {_SEARCH_MAX} characters on one line")
    status = query.one_of("status", request.GET.get("status", ""), [k for k in STATUSES if k])
    page_number = query.page_number(request)  # ASCII digits only (int() takes other scripts' too)
    users = get_user_model().objects.order_by("username")
    if q:
        users = users.filter(
            Q(username__icontains=q)
            | Q(email__icontains=q)
            | Q(first_name__icontains=q)
            | Q(last_name__icontains=q)
        )
    if status:
        users = users.filter(is_active=status == "active")
    page = Paginator(_annotated(users), settings.PAGE_SIZE).get_page(page_number)
    context = {
        "page": page,
        "filters": {"q": q, "status": status},
        "statuses": STATUSES.items(),
    }
    if request.htmx and request.htmx.target == "user-rows":
        return render(request, "console/user_list.html#rows", context)
    return render(request, "console/user_list.html", context)


def _link_page(request: HttpRequest, user: Any, issued: user_services.IssuedLink, what: str) -> HttpResponse:
    """Shown once, right after the link was made: the token is not kept anywhere."""
    url = request.build_absolute_uri(issued.path)
    context = {"target": user, "url": url, "link": issued.link, "what": what}
    response = render(request, "console/user_link.html", context)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@audited_post("user.create")
def user_create(request: HttpRequest) -> HttpResponse:
    _superuser_only(request)
    form = UserCreateForm(request.POST or None, team_names=list(Team.objects.values_list("name", flat=True)))
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                user, issued = user_services.create_user(
                    actor=request.user,
                    ctx=RequestContext.from_request(request),
                    username=data["username"],
                    email=data["email"],
                    password=data["password1"] if data["how"] == "password" else None,
                    teams=data["teams"],
                )
            except ServiceError as exc:
                field = {"password": "password1"}.get(exc.field or "", exc.field)
                form.add_error(field if field in form.fields else None, exc.message)
                status = exc.status_code
            else:
                if issued is not None:
                    return _link_page(request, user, issued, "invitation")
                messages.success(request, f"User {user.username} created.")
                return redirect("user-detail", pk=user.pk)
    return render(request, "console/user_create.html", {"form": form}, status=status)


@require_safe
@login_required
def user_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _superuser_only(request)
    user = get_object_or_404(
        _annotated(get_user_model().objects.all()).prefetch_related("console_teams__bindings__hosts"), pk=pk
    )
    now = timezone.now()
    links = [link for link in user.password_links.all()[:5]]
    context = {"target": user, "links": links, "now": now, "is_self": user.pk == request.user.pk}
    return render(request, "console/user_detail.html", context)


# name -> (service call, page title, what the page explains)
_ACTIONS: dict[str, tuple[Callable[..., Any], str, str]] = {
    "deactivate": (
        user_services.deactivate_user,
        "Deactivate",
        "They can no longer log in; their open sessions end now and unused links stop working. "
        "Their teams and the audit trail are kept, and they can be reactivated.",
    ),
    "reset-password": (
        user_services.reset_password,
        "Reset the password of",
        "Their current password stops working now and their open sessions end. You get a one-time "
        "link to give them, with which they set a new password.",
    ),
    "remove-2fa": (
        user_services.remove_two_factor,
        "Remove two-factor authentication of",
        "Their authenticator app is forgotten: from now on they log in with their password only, "
        "and can set up a new app on their Account page.",
    ),
}


def _confirmed_action(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    """The confirmation page of a destructive action, and the action once the name is typed."""
    _superuser_only(request)
    user = get_object_or_404(get_user_model(), pk=pk)
    call, title, explanation = _ACTIONS[name]
    form = ConfirmForm(request.POST or None, username=user.username)
    error, status = None, 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                result = call(actor=request.user, ctx=RequestContext.from_request(request), user=user)
            except ServiceError as exc:
                error, status = exc.message, exc.status_code
            else:
                if name == "reset-password":
                    return _link_page(request, user, result, "password reset")
                done = {
                    "deactivate": f"{user.username} is deactivated ({result} open session(s) ended).",
                    "remove-2fa": f"Two-factor authentication of {user.username} removed.",
                }[name]
                messages.success(request, done)
                return redirect("user-detail", pk=user.pk)
    context = {
        "target": user,
        "form": form,
        "error": error,
        "title": title,
        "explanation": explanation,
        "button": title.split(" ")[0],
    }
    return render(request, "console/user_confirm.html", context, status=status)


@login_required
@audited_post("user.deactivate")
def user_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    return _confirmed_action(request, pk, "deactivate")


@login_required
@audited_post("user.password.reset")
def user_reset_password(request: HttpRequest, pk: int) -> HttpResponse:
    return _confirmed_action(request, pk, "reset-password")


@login_required
@audited_post("user.totp.remove")
def user_remove_2fa(request: HttpRequest, pk: int) -> HttpResponse:
    return _confirmed_action(request, pk, "remove-2fa")


@require_POST
@login_required
@audited_post("user.reactivate")
def user_reactivate(request: HttpRequest, pk: int) -> HttpResponse:
    """Not destructive, so no confirmation page: a button on the user's page."""
    _superuser_only(request)
    user = get_object_or_404(get_user_model(), pk=pk)
    try:
        user_services.reactivate_user(actor=request.user, ctx=RequestContext.from_request(request), user=user)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return render(request, "console/_error.html", {"message": exc.message}, status=exc.status_code)
    messages.success(request, f"{user.username} is active again.")
    return redirect("user-detail", pk=user.pk)


@require_http_methods(["GET", "HEAD", "POST"])
def set_password(request: HttpRequest, token: str) -> HttpResponse:
    """Where an invitation or a reset link leads: the link's owner chooses a password.

    No audited_post here: its row would name the URL's token; the service audits every POST.
    """
    link = user_services.find_link(token)
    field_errors: dict[str, str] = {}
    error, status = None, 200
    if request.method == "POST":
        try:
            user_services.set_password_with_link(
                ctx=RequestContext.from_request(request),
                token=token,
                password=request.POST.get("new_password1", ""),
                password_again=request.POST.get("new_password2", ""),
            )
        except ServiceError as exc:
            status = exc.status_code
            if exc.field:
                field_errors[exc.field] = exc.message
            else:
                error = exc.message
        else:
            messages.success(request, "Your password is set. Log in with it.")
            return redirect("login")
    else:
        try:
            user_services.check_link(link)
        except ServiceError as exc:
            error, status = exc.message, exc.status_code
    context = {"form": LinkPasswordForm(), "field_errors": field_errors, "link": link, "error": error}
    response = render(request, "registration/set_password.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response
