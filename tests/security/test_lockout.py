"""Failed logins are throttled per username + IP by django-axes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.backends import AxesStandaloneBackend
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.module_loading import import_string

from tests.security.conftest import PASSWORD, logged_in_as, post_login

pytestmark = pytest.mark.django_db


def limit() -> int:
    return settings.AXES_FAILURE_LIMIT


def test_settings_default_to_five_failures_and_fifteen_minutes():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    first = import_string(settings.AUTHENTICATION_BACKENDS[0])
    assert issubclass(first, AxesStandaloneBackend)


def test_locked_out_after_the_limit_even_with_the_right_password(client, alice):
    for attempt in range(limit() - 1):
        response = post_login(client, "alice", "wrong-password")
        assert response.status_code == 200, attempt
        assert "did not match" in response.content.decode()

    before = timezone.now()
    response = post_login(client, "alice", "wrong-password")  # the limit-th failure
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed log-ins" in page
    assert "Try again after" in page
    assert f"{settings.AXES_COOLOFF_TIME.seconds // 60}-minute wait" in page
    # The page says when: the cool-off after the last failure.
    retry_at = response.context["retry_at"]
    assert before + settings.AXES_COOLOFF_TIME <= retry_at <= timezone.now() + settings.AXES_COOLOFF_TIME
    assert timezone.localtime(retry_at).strftime("%H:%M") in page

    response = post_login(client, "alice", PASSWORD)
    assert response.status_code == 429
    assert "Too many failed log-ins" in response.content.decode()
    assert logged_in_as(client) is None


def test_lock_is_per_username_and_ip(client, alice, make_user):
    make_user("bob", password=PASSWORD)
    for _ in range(limit()):
        post_login(client, "alice", "wrong-password", ip="198.51.100.7")
    assert post_login(client, "alice", PASSWORD, ip="198.51.100.7").status_code == 429

    # Another user from the same address, and the same user from another address, are not locked.
    response = post_login(client, "bob", PASSWORD, ip="198.51.100.7")
    assert response.status_code == 302 and logged_in_as(client) == "bob"
    client.logout()
    response = post_login(client, "alice", PASSWORD, ip="203.0.113.9")
    assert response.status_code == 302 and logged_in_as(client) == "alice"


def test_a_successful_login_resets_the_count(client, alice):
    for _ in range(limit() - 1):
        post_login(client, "alice", "wrong-password")
    assert post_login(client, "alice", PASSWORD).status_code == 302
    client.logout()
    assert not AccessAttempt.objects.filter(username="alice").exists()
    # Without the reset, these would add up past the limit.
    for _ in range(limit() - 1):
        assert post_login(client, "alice", "wrong-password").status_code == 200
    response = post_login(client, "alice", PASSWORD)
    assert response.status_code == 302 and logged_in_as(client) == "alice"


def test_the_lock_ends_after_the_cool_off(client, alice):
    for _ in range(limit()):
        post_login(client, "alice", "wrong-password")
    assert post_login(client, "alice", PASSWORD).status_code == 429
    past = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=5)
    AccessAttempt.objects.filter(username="alice").update(attempt_time=past)
    response = post_login(client, "alice", PASSWORD)
    assert response.status_code == 302 and logged_in_as(client) == "alice"


def test_the_test_client_can_still_log_in(client, alice):
    assert client.login(username="alice", password="wrong-password") is False
    assert client.login(username="alice", password=PASSWORD) is True
    assert client.get("/account/").status_code == 200
    client.logout()
    client.force_login(get_user_model().objects.get(username="alice"))
    assert client.get("/account/").status_code == 200
