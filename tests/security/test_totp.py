"""Optional TOTP two-factor: enrol on the Account page, then log-ins need the code."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from console.models import AuditEvent
from tests.security.conftest import PASSWORD, code_for, logged_in_as, post_login, wrong_code_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_code_throttle(settings):
    # django-otp refuses any code for 2**(n-1) s after n wrong ones; these tests type quickly.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0


def enrol(client) -> TOTPDevice:
    """Set up two-factor through the pages, as a user would; return the confirmed device."""
    response = client.post(reverse("account-totp-start"), REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 302
    device = TOTPDevice.objects.get(user__username="alice")
    response = client.post(
        reverse("account-totp-confirm"), {"otp_token": code_for(device)}, REMOTE_ADDR="192.0.2.10"
    )
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    return device


def test_enrolment_shows_the_key_and_needs_a_valid_code(client, alice):
    client.force_login(alice)
    page = client.get(reverse("account")).content.decode()
    assert "Set up two-factor authentication" in page

    client.post(reverse("account-totp-start"))
    device = TOTPDevice.objects.get(user=alice)
    assert not device.confirmed
    page = client.get(reverse("account")).content.decode()
    secret = re.search(r"secret=([A-Z2-7]+)", page).group(1)
    assert f"<code>{secret}</code>" in page
    assert "otpauth://totp/LXC%20console%3Aalice?secret=" in page
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    assert "<path" in svg and "style=" not in svg and "<script" not in svg

    # Not on until confirmed: a wrong code leaves it unconfirmed, and log-in needs no code.
    response = client.post(reverse("account-totp-confirm"), {"otp_token": wrong_code_for(device)})
    assert response.status_code == 400
    assert "That code is not valid" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert not AuditEvent.objects.filter(action="account.totp.enable", result="succeeded").exists()
    assert AuditEvent.objects.filter(action="account.totp.enable", result="refused").count() == 1
    other = Client()
    assert post_login(other, "alice", PASSWORD).status_code == 302

    response = client.post(
        reverse("account-totp-confirm"), {"otp_token": code_for(device)}, REMOTE_ADDR="192.0.2.10"
    )
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    event = AuditEvent.objects.get(action="account.totp.enable", result="succeeded")
    assert event.actor == alice and event.result == "succeeded" and str(event.ip) == "192.0.2.10"
    assert event.request_id
    # This session proved it has the device, so it stays logged in.
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    page = client.get(reverse("account")).content.decode()
    assert "Turn two-factor off" in page
    # The session opened before the device existed (without a code) is ended.
    response = other.get(reverse("account"))
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=/account/")
    assert logged_in_as(other) is None


def test_login_needs_the_code_once_enrolled(client, alice):
    client.force_login(alice)
    device = enrol(client)

    browser = Client()
    response = post_login(browser, "alice", PASSWORD)
    assert response.status_code == 200 and logged_in_as(browser) is None
    assert "did not match" in response.content.decode()

    response = post_login(browser, "alice", PASSWORD, otp_token=wrong_code_for(device))
    assert response.status_code == 200 and logged_in_as(browser) is None

    # A right code with a wrong password is refused too.
    response = post_login(browser, "alice", "wrong-password", otp_token=code_for(device, 1))
    assert response.status_code == 200 and logged_in_as(browser) is None

    response = post_login(browser, "alice", PASSWORD, otp_token=code_for(device, 1))
    assert response.status_code == 302
    assert logged_in_as(browser) == "alice"
    assert browser.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert browser.get(reverse("account")).status_code == 200


def test_a_code_cannot_be_used_twice(client, alice):
    client.force_login(alice)
    device = enrol(client)
    code = code_for(device, 1)
    first, second = Client(), Client()
    assert post_login(first, "alice", PASSWORD, otp_token=code).status_code == 302
    response = post_login(second, "alice", PASSWORD, otp_token=code)
    assert response.status_code == 200 and logged_in_as(second) is None


def test_guessing_codes_counts_towards_the_lockout(client, alice):
    client.force_login(alice)
    device = enrol(client)
    browser = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert post_login(browser, "alice", PASSWORD, otp_token=wrong_code_for(device)).status_code == 200
    response = post_login(browser, "alice", PASSWORD, otp_token=wrong_code_for(device))
    assert response.status_code == 429
    response = post_login(browser, "alice", PASSWORD, otp_token=code_for(device, 1))
    assert response.status_code == 429 and logged_in_as(browser) is None


def test_turning_it_off_needs_the_password_and_is_audited(client, alice):
    client.force_login(alice)
    enrol(client)
    response = client.post(reverse("account-totp-remove"), {"password": "wrong-password"})
    assert response.status_code == 400
    assert "That is not your password" in response.content.decode()
    assert TOTPDevice.objects.filter(user=alice, confirmed=True).exists()
    assert not AuditEvent.objects.filter(action="account.totp.disable", result="succeeded").exists()

    response = client.post(reverse("account-totp-remove"), {"password": PASSWORD}, REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=alice).exists()
    event = AuditEvent.objects.get(action="account.totp.disable", result="succeeded")
    assert event.actor == alice and event.result == "succeeded" and str(event.ip) == "192.0.2.10"

    browser = Client()
    assert post_login(browser, "alice", PASSWORD).status_code == 302
    assert logged_in_as(browser) == "alice"


def test_account_pages_need_a_login_and_post(client, alice):
    response = client.get(reverse("account"))
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert client.post(reverse("account-totp-start")).status_code == 302
    assert not TOTPDevice.objects.exists()
    client.force_login(alice)
    assert client.get(reverse("account-totp-start")).status_code == 405
    assert client.get(reverse("account-totp-remove")).status_code == 405
    assert 'href="/account/"' in client.get(reverse("account")).content.decode()  # linked in the user box


def test_a_right_code_during_the_wait_after_a_wrong_one_says_to_wait(client, alice, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 30  # the wait after one wrong code: long enough for a test
    client.force_login(alice)
    client.post(reverse("account-totp-start"))
    device = TOTPDevice.objects.get(user=alice)
    wrong = client.post(reverse("account-totp-confirm"), {"otp_token": wrong_code_for(device)})
    assert wrong.status_code == 400
    response = client.post(reverse("account-totp-confirm"), {"otp_token": code_for(device)})
    page = response.content.decode()
    assert response.status_code == 429
    assert re.search(r"Too many wrong codes in a row: wait (29|30) s, then type the code again", page)
    assert f'value="{code_for(device)}"' in page  # what was typed stays
    device.refresh_from_db()
    assert not device.confirmed
