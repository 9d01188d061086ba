"""Helpers for the login-hardening tests."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

PASSWORD = "a-long-test-password"


def code_for(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows for ``device`` (``steps_ahead`` 30 s steps later)."""
    device.refresh_from_db()
    value = totp(
        device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift + steps_ahead
    )
    return f"{value:0{device.digits}d}"


def wrong_code_for(device: TOTPDevice) -> str:
    right = {code_for(device, k) for k in (-2, -1, 0, 1, 2)}
    return next(c for c in ("000000", "111111", "222222", "333333", "444444", "555555") if c not in right)


def post_login(client, username: str, password: str, otp_token: str = "", ip: str = "198.51.100.7"):
    return client.post(
        reverse("login"),
        {"username": username, "password": password, "otp_token": otp_token},
        REMOTE_ADDR=ip,
    )


def logged_in_as(client) -> str | None:
    from django.contrib.auth import get_user_model

    pk = client.session.get("_auth_user_id")
    return get_user_model().objects.get(pk=pk).get_username() if pk else None


@pytest.fixture
def alice(make_user):
    return make_user("alice", password=PASSWORD)
