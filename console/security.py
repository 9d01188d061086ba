"""Login hardening: the Content-Security-Policy header, django-axes glue and the TOTP login form.

- :class:`ContentSecurityPolicyMiddleware` sends ``settings.CONTENT_SECURITY_POLICY`` on every response.
- :class:`AxesBackend` is django-axes' backend, refusing a locked-out username+IP before the
  password is checked; it lets ``authenticate()`` calls without a request (the test client's
  ``login()``, scripts) through to the next backend, since axes can only count web logins.
- :func:`lockout_response` renders the lockout page with the time the lock ends.
- :class:`LoginForm` adds the optional one-time code: a user with a confirmed TOTP device must give
  a valid one; a missing or wrong code is a failed login for django-axes, like a wrong password.
- :class:`RequireOTPMiddleware` logs out a session of a user with a confirmed device that was not
  verified with a code (one opened before the device was added).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django import forms
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import redirect_to_login
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django_otp import devices_for_user, verify_token
from django_otp.plugins.otp_totp.models import TOTPDevice


class ContentSecurityPolicyMiddleware:
    """Only the console's own static files: no inline script or style, no framing."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class AxesBackend(AxesStandaloneBackend):
    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        if request is None:
            # Not a web login (Client.login(), a script): nothing for axes to count or refuse.
            return None
        return super().authenticate(request, *args, **kwargs)


def client_ip(request: HttpRequest) -> str | None:
    """The address django-axes counts failures for: the same as the audit trail's (trusted proxies only)."""
    from console.middleware import request_client_ip

    return getattr(request, "client_ip", None) or request_client_ip(request)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """The lockout page (HTTP 429), saying when the lock ends."""
    cool_off = get_cool_off(request)
    username = get_client_username(request, credentials) or ""
    retry_at: datetime | None = None
    if cool_off is not None:
        # The lock lasts until the cool-off has passed since the last failure of this
        # username+IP (every try while locked out is a failure and restarts it).
        last = AccessAttempt.objects.filter(
            username=username, ip_address=getattr(request, "axes_ip_address", client_ip(request))
        ).aggregate(last=Max("attempt_time"))["last"]
        retry_at = (last or getattr(request, "axes_attempt_time", None) or timezone.now()) + cool_off
    context = {
        "username": username,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": round(cool_off.total_seconds() / 60) if cool_off else None,
        "retry_at": retry_at,
    }
    code = settings.AXES_HTTP_RESPONSE_CODE  # type: ignore[misc]  # axes.conf sets its default at import
    return render(request, "registration/locked_out.html", context, status=code)


def confirmed_totp_devices(user: Any) -> list[TOTPDevice]:
    return [d for d in devices_for_user(user, confirmed=True) if isinstance(d, TOTPDevice)]


class LoginForm(AuthenticationForm):
    """User name, password and, for users with two-factor on, the one-time code."""

    otp_token = forms.CharField(
        label="One-time code",
        required=False,
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9 ]*"}
        ),
        help_text="Only if two-factor authentication is on for your account.",
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": (
            "Your user name, password or one-time code did not match. Try again. "
            "Accounts with two-factor authentication need the code from the authenticator app."
        ),
    }

    def clean(self) -> dict:
        cleaned = super().clean()  # checks user name and password (and axes' lockout)
        user = self.user_cache
        if user is None:
            return cleaned
        devices = confirmed_totp_devices(user)
        if not devices:
            return cleaned
        token = "".join((cleaned.get("otp_token") or "").split())
        # django_otp.verify_token locks the device row: a code cannot be used twice concurrently.
        device = next((d for d in devices if token and verify_token(user, d.persistent_id, token)), None)
        if device is None:
            # Same message as a wrong password (no hint that the password was right), and the
            # same count towards the lockout, so codes cannot be guessed without limit.
            self.user_cache = None
            user_login_failed.send(
                sender=__name__,
                credentials={"username": cleaned.get("username")},
                request=self.request,
            )
            raise self.get_invalid_login_error()
        # django_otp marks the session verified with this device when LoginView logs the user in.
        user.otp_device = device  # type: ignore[attr-defined]  # django_otp's attribute on the user
        return cleaned


class RequireOTPMiddleware:
    """A session of a user with two-factor on must have been verified with a code; else log out.

    Runs after django_otp's OTPMiddleware (which sets ``request.user.is_verified``).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not user.is_verified()
            and TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        ):
            logout(request)
            response: HttpResponse = redirect_to_login(request.get_full_path())
            if request.headers.get("HX-Request"):
                # An htmx request would swap the login page into a fragment: load it whole.
                response = HttpResponse(status=204, headers={"HX-Redirect": response["Location"]})
            return response
        return self.get_response(request)
