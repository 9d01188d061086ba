"""The Content-Security-Policy allows only the console's own files, and the templates need nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from tests.security.conftest import post_login

pytestmark = pytest.mark.django_db

EXPECTED = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
TEMPLATES = Path(settings.BASE_DIR) / "templates"


def directives(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


def test_the_policy_is_the_console_only_one():
    policy = directives(EXPECTED)
    assert directives(settings.CONTENT_SECURITY_POLICY) == policy
    assert "'unsafe-inline'" not in settings.CONTENT_SECURITY_POLICY
    assert "'unsafe-eval'" not in settings.CONTENT_SECURITY_POLICY


def test_header_on_the_login_page_pages_errors_and_static_files(client, make_user):
    assert client.get(reverse("login"))["Content-Security-Policy"] == EXPECTED
    client.force_login(make_user("carol"))
    for url in (reverse("account"), reverse("containers:list"), reverse("audit-list"), "/no-such-page/"):
        response = client.get(url)
        assert response["Content-Security-Policy"] == EXPECTED, url
    assert client.get("/static/css/console.css")["Content-Security-Policy"] == EXPECTED


def test_header_on_the_lockout_page(client, make_user):
    make_user("dave")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = post_login(client, "dave", "wrong-password")
    assert response.status_code == 429
    assert response["Content-Security-Policy"] == EXPECTED


def test_templates_have_no_inline_script_or_style():
    """Under this policy, inline code is blocked by the browser: none may be written."""
    offenders = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text()
        for pattern in (
            r"<script(?![^>]*\bsrc=)[^>]*>",  # inline <script> (a script needs src=)
            r"<style\b",
            r"\sstyle\s*=",
            r"\son[a-z]+\s*=",  # onclick=, onload=, ...
            r"\shx-on[:-]",  # htmx inline handlers are eval'd
            r"javascript:",
        ):
            offenders += [
                f"{path.relative_to(TEMPLATES)}: {m.group(0)}" for m in re.finditer(pattern, text, re.I)
            ]
    assert offenders == []


def test_htmx_is_told_not_to_inject_its_styles(client):
    page = client.get(reverse("login")).content.decode()
    config = re.search(r'<meta name="htmx-config" content=\'([^\']*)\'', page).group(1)
    assert '"includeIndicatorStyles":false' in config
    assert '"allowEval":false' in config
    assert re.search(r'<script src="/static/js/htmx\.min\.js" defer></script>', page)
