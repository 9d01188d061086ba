"""The Hosts admin's page of an agent's credentials, as an admin clicks it: a one-time enrolment
token (untouched, one change, one wrong value), revoking with confirmation; and adding a host."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from console.models import AuditEvent, Host, HostEnrolment
from tests.browser.helpers import PASSWORD, login

pytestmark = [pytest.mark.browser]


def _answer(page, accept: bool, questions: list[str]) -> None:
    def handle(dialog):
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", handle)


def test_tokens_and_revoking_on_the_agent_credentials_page(page, live_server, make_user, host):
    make_user("enrol-admin", role="admin", password=PASSWORD)
    login(page, live_server.url, "enrol-admin")
    page.goto(f"{live_server.url}/hosts/{host.slug}/")
    page.click("text=agent credentials")
    page.wait_for_url(f"{live_server.url}/hosts/{host.slug}/agent/")
    # On SQLite the page says enrolment does not apply there; on PostgreSQL it does not say so.
    if connection.vendor == "sqlite":
        assert "enrolment does not apply" in page.inner_text("[role=status]")
    else:
        assert "enrolment does not apply" not in page.content()
    assert page.get_attribute("[data-state]", "data-state") == "not-enrolled"

    # Untouched: the default validity (24 h); the token is shown once, only its hash is stored.
    page.click("button:has-text('Issue a token')")
    first = page.inner_text("[data-token]").strip()
    row = HostEnrolment.objects.get(host=host)
    assert row.token_hash == hashlib.sha256(first.encode()).hexdigest()
    assert abs(row.expires_at - (timezone.now() + timedelta(hours=24))) < timedelta(minutes=1)
    assert f"--enrol {first} --console {live_server.url}" in page.inner_text("pre")
    page.goto(f"{live_server.url}/hosts/{host.slug}/agent/")
    assert page.locator("[data-token]").count() == 0 and first not in page.content()
    assert "valid until" in page.inner_text("[data-field=waiting]")

    # One change: 2 hours. The new token replaces the first, which is void.
    page.fill("input[name=hours]", "2")
    page.click("button:has-text('Issue a token')")
    second = page.inner_text("[data-token]").strip()
    assert second != first
    newest = HostEnrolment.objects.filter(host=host).order_by("-pk").first()
    assert newest.token_hash == hashlib.sha256(second.encode()).hexdigest()
    assert abs(newest.expires_at - (timezone.now() + timedelta(hours=2))) < timedelta(minutes=1)
    assert HostEnrolment.objects.get(pk=row.pk).revoked_at is not None

    # One wrong value: 0 hours. Refused with the reason, the value kept, nothing issued.
    page.fill("input[name=hours]", "0")
    page.click("button:has-text('Issue a token')")
    assert "a token is valid for 1 to 168 hours" in page.inner_text(".field-error")
    assert page.input_value("input[name=hours]") == "0"
    assert page.locator("[data-token]").count() == 0
    assert HostEnrolment.objects.filter(host=host).count() == 2
    results = list(
        AuditEvent.objects.filter(action="host.enrol.token").order_by("pk").values_list("result", flat=True)
    )
    assert results == ["succeeded", "succeeded", "refused"]

    # Revoke: dismissing the question changes nothing; the slug typed wrong is refused.
    questions: list[str] = []
    page.fill("input[name=confirm]", host.slug)
    _answer(page, False, questions)
    page.click("button:has-text('Revoke credentials')")
    page.wait_for_timeout(300)
    assert questions == [f"Revoke the credentials of {host.slug}? Its agent is cut off at once."]
    assert Host.objects.get(pk=host.pk).revoked_at is None
    page.fill("input[name=confirm]", host.slug + "x")
    _answer(page, True, questions)
    with page.expect_navigation():
        page.click("button:has-text('Revoke credentials')")
    assert f"type {host.slug} exactly to confirm" in page.inner_text(".field-error")
    assert page.input_value("input[name=confirm]") == host.slug + "x"
    assert Host.objects.get(pk=host.pk).revoked_at is None
    page.fill("input[name=confirm]", host.slug)
    _answer(page, True, questions)
    with page.expect_navigation():
        page.click("button:has-text('Revoke credentials')")
    assert page.get_attribute("[data-state]", "data-state") == "revoked"
    assert f"The credentials of {host.slug} are revoked." in page.inner_text("body")
    assert Host.objects.get(pk=host.pk).revoked_at is not None
    assert not HostEnrolment.objects.filter(host=host, revoked_at__isnull=True, used_at__isnull=True).exists()
    assert list(
        AuditEvent.objects.filter(action="host.revoke").order_by("pk").values_list("result", flat=True)
    ) == ["refused", "succeeded"]


def test_a_viewer_has_no_credentials_page(page, live_server, make_user, host):
    make_user("enrol-viewer", role="view", password=PASSWORD)
    login(page, live_server.url, "enrol-viewer")
    page.goto(f"{live_server.url}/hosts/{host.slug}/")
    assert page.locator("text=agent credentials").count() == 0
    response = page.goto(f"{live_server.url}/hosts/{host.slug}/agent/")
    assert response.status == 403


def test_a_superuser_adds_a_host_and_gets_its_first_token(page, live_server, make_user):
    make_user("enrol-root", role=None, superuser=True, password=PASSWORD)
    login(page, live_server.url, "enrol-root")
    page.goto(f"{live_server.url}/hosts/")
    # Untouched: the browser stops it (the slug is required).
    page.click("button:has-text('Add the host')")
    assert page.eval_on_selector("input[name=slug]", "e => !e.validity.valid && e.validationMessage")
    assert page.url.endswith("/hosts/") and not Host.objects.filter(slug="vm2").exists()
    # One wrong value: a slug with a capital letter; what was typed stays.
    page.fill("input[name=slug]", "VM2")
    page.fill("input[name=name]", "second machine")
    page.fill("input[name=hours]", "12")
    page.click("button:has-text('Add the host')")
    assert "a host slug is 1-63 lowercase letters" in page.inner_text(".field-error")
    assert page.input_value("input[name=slug]") == "VM2"
    assert page.input_value("input[name=name]") == "second machine"
    assert page.input_value("input[name=hours]") == "12"
    # Another: a token lifetime that is not a number of hours; the slug typed stays too.
    page.fill("input[name=slug]", "vm2")
    page.fill("input[name=hours]", "lots")
    page.click("button:has-text('Add the host')")
    assert "hours" in page.inner_text(".field-error")
    assert page.input_value("input[name=slug]") == "vm2"
    assert page.input_value("input[name=hours]") == "lots"
    assert not Host.objects.filter(name="second machine").exists()
    page.fill("input[name=hours]", "24")
    assert not Host.objects.filter(name="second machine").exists()
    page.fill("input[name=slug]", "vm2")
    page.click("button:has-text('Add the host')")
    token = page.inner_text("[data-token]").strip()
    added = Host.objects.get(slug="vm2")
    assert added.name == "second machine"
    assert HostEnrolment.objects.get(host=added).token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert AuditEvent.objects.filter(action="host.add", result="succeeded").count() == 1
