"""`manage.py check --deploy` is clean with the production switch; the default stays plain HTTP."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

ROOT = Path(settings.BASE_DIR)


def check_deploy(**env: str) -> subprocess.CompletedProcess:
    environ = {
        k: v
        for k, v in os.environ.items()
        # DJANGO_ALLOW_ASYNC_UNSAFE: set by the browser tests' Playwright fixture, never in production.
        if k not in ("DEBUG", "CONSOLE_PRODUCTION", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    environ.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_nothing_in_production():
    result = check_deploy(
        CONSOLE_PRODUCTION="1",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="console.example.org",
        CSRF_TRUSTED_ORIGINS="https://console.example.org",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_warns_without_the_switch():
    """The same check fails on the embedded default: the switch is what makes it pass."""
    result = check_deploy(SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="console.example.org")
    assert result.returncode != 0
    for code in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert code in result.stdout + result.stderr, code


def test_production_settings_values():
    names = [
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "SESSION_COOKIE_SAMESITE",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SESSION_EXPIRE_AT_BROWSER_CLOSE",
        "SESSION_COOKIE_AGE",
    ]
    code = f"from django.conf import settings as s; print(*(getattr(s, n) for n in {names!r}))"
    environ = dict(os.environ, CONSOLE_PRODUCTION="1", DJANGO_SETTINGS_MODULE="console.settings")
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup();" + code],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert out == ["True", "True", "True", "Lax", "True", "31536000", "True", "28800"]


@pytest.mark.django_db
def test_the_embedded_default_serves_plain_http(client):
    assert settings.SECURE_SSL_REDIRECT is False
    assert settings.SESSION_COOKIE_SECURE is False and settings.CSRF_COOKIE_SECURE is False
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response
    assert response.cookies["csrftoken"]["secure"] == ""
