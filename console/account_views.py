"""The login page (with the optional one-time code) and the user's own Account page.

Two-factor authentication (TOTP, RFC 6238) is optional per user: the Account page creates an
unconfirmed device and shows its secret (as text, as an ``otpauth://`` URI and as a QR code drawn
server-side as inline SVG); the device is used at login only once the user has confirmed it with a
code from the app. Turning it on or off writes an audit event (no host command is involved).
"""

from __future__ import annotations

import math
from base64 import b32encode

import qrcode
import qrcode.image.svg
from django import forms
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST, require_safe
from django_otp import login as otp_login
from django_otp import verify_token
from django_otp.plugins.otp_totp.models import TOTPDevice

from console.choices import AuditResult, ConsoleAction
from console.decorators import audited_post
from console.operations import RequestContext, audit
from console.security import LoginForm, confirmed_totp_devices

PENDING_DEVICE_NAME = "pending"
DEVICE_NAME = "authenticator app"


class LoginView(auth_views.LoginView):
    authentication_form = LoginForm
    redirect_authenticated_user = False


class TokenForm(forms.Form):
    otp_token = forms.CharField(
        label="Code from the app",
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean_otp_token(self) -> str:
        return "".join(self.cleaned_data["otp_token"].split())


class PasswordConfirmForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, user, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.")
        return password


def _pending_device(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


def _qr_svg(uri: str) -> str:
    """The URI as a QR code: an inline SVG made here (no script, no external image)."""
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathFillImage, box_size=10, border=4)
    return image.to_string(encoding="unicode")


def _account_page(request: HttpRequest, *, token_form=None, remove_form=None, status=200) -> HttpResponse:
    user = request.user
    devices = confirmed_totp_devices(user)
    pending = None if devices else _pending_device(user)
    context = {
        "totp_device": devices[0] if devices else None,
        "pending": pending,
        "token_form": token_form or TokenForm(),
        "remove_form": remove_form or PasswordConfirmForm(user),
    }
    if pending is not None:
        uri = pending.config_url
        context.update(
            {
                "otpauth_uri": uri,
                "secret": b32encode(pending.bin_key).decode(),
                "qr_svg": mark_safe(_qr_svg(uri)),  # noqa: S308 - SVG generated here from our own URI
            }
        )
    return render(request, "account/account.html", context, status=status)


@require_safe
@login_required
def account(request: HttpRequest) -> HttpResponse:
    return _account_page(request)


@require_POST
@login_required
@audited_post(ConsoleAction.ACCOUNT_TOTP_START)
def totp_start(request: HttpRequest) -> HttpResponse:
    """Make a new (unconfirmed) device with a fresh key; it is not used until confirmed."""
    if confirmed_totp_devices(request.user):
        messages.info(request, "Two-factor authentication is already on.")
        return redirect("account")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=request.user, confirmed=False).delete()
        TOTPDevice.objects.create(user=request.user, name=PENDING_DEVICE_NAME, confirmed=False)
    return redirect("account")


@require_POST
@login_required
@audited_post(ConsoleAction.ACCOUNT_TOTP_ENABLE)
def totp_confirm(request: HttpRequest) -> HttpResponse:
    pending = _pending_device(request.user)
    if pending is None or confirmed_totp_devices(request.user):
        return redirect("account")
    form = TokenForm(request.POST)
    # After a wrong code the device refuses every code for a while (1 s, 2 s, 4 s, ...): a right
    # code typed then is refused too, and "not valid" would send the user to their phone's clock.
    allowed, why = pending.verify_is_allowed()
    if form.is_valid() and not allowed and why and why.get("locked_until"):
        wait = max(1, math.ceil((why["locked_until"] - timezone.now()).total_seconds()))
        form.add_error("otp_token", f"Too many wrong codes in a row: wait {wait} s, then type the code again")
        return _account_page(request, token_form=form, status=429)
    if form.is_valid() and verify_token(request.user, pending.persistent_id, form.cleaned_data["otp_token"]):
        pending.refresh_from_db()
        with transaction.atomic():
            pending.confirmed = True
            pending.name = DEVICE_NAME
            pending.save(update_fields=["confirmed", "name"])
            audit(
                actor=request.user,
                ctx=RequestContext.from_request(request),
                action=ConsoleAction.ACCOUNT_TOTP_ENABLE,
                result=AuditResult.SUCCEEDED,
                target=request.user.get_username(),
                params={"device": pending.persistent_id},
            )
        # This session proved it has the device; other sessions of the user must log in again.
        otp_login(request, pending)
        messages.success(request, "Two-factor authentication is on: log-ins now ask for a code.")
        return redirect("account")
    if form.is_valid():
        form.add_error("otp_token", "That code is not valid. Check the time on your phone and try again.")
    return _account_page(request, token_form=form, status=400)


@require_POST
@login_required
@audited_post(ConsoleAction.ACCOUNT_TOTP_DISABLE)
def totp_remove(request: HttpRequest) -> HttpResponse:
    devices = confirmed_totp_devices(request.user)
    if not devices:
        return redirect("account")
    form = PasswordConfirmForm(request.user, request.POST)
    if not form.is_valid():
        return _account_page(request, remove_form=form, status=400)
    with transaction.atomic():
        TOTPDevice.objects.filter(user=request.user).delete()
        audit(
            actor=request.user,
            ctx=RequestContext.from_request(request),
            action=ConsoleAction.ACCOUNT_TOTP_DISABLE,
            result=AuditResult.SUCCEEDED,
            target=request.user.get_username(),
            params={"devices": [d.persistent_id for d in devices]},
        )
    messages.success(request, "Two-factor authentication is off.")
    return redirect("account")


@login_required
@audited_post(ConsoleAction.ACCOUNT_PASSWORD_CHANGE)
def password_change(request: HttpRequest) -> HttpResponse:
    """Change one's password; Django's validators (length 12, common, numeric, similar) apply."""
    assert request.user.is_authenticated  # login_required
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
            audit(
                actor=user,
                ctx=RequestContext.from_request(request),
                action=ConsoleAction.ACCOUNT_PASSWORD_CHANGE,
                result=AuditResult.SUCCEEDED,
                target=user.get_username(),
            )
        update_session_auth_hash(request, user)
        messages.success(request, "Your password was changed.")
        return redirect("account")
    return render(request, "account/password_change.html", {"form": form}, status=400 if form.errors else 200)
