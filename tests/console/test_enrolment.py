"""Enrolment tokens and the agent's exchange endpoint (console.enrolment); the end-to-end run on
PostgreSQL + Redis is tests/host/test_enrolment.py."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from console import enrolment
from console.errors import Conflict, InvalidInput
from console.models import AuditEvent, HostEnrolment
from console.operations import RequestContext
from containers import services


def _post(client, body) -> tuple[int, dict]:
    response = client.post("/agent/enrol/", json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


def test_an_unknown_or_spent_token_is_refused_and_audited(client, host, superuser):
    status, answer = _post(client, {"token": "not-a-token"})
    assert status == 403 and "unknown, used, revoked or expired" in answer["error"]
    _, token = enrolment.issue_token(actor=superuser, ctx=RequestContext(), host=host, hours=1)
    enrolment.issue_token(actor=superuser, ctx=RequestContext(), host=host, hours=1)  # the first is void
    status, answer = _post(client, {"token": token})
    assert status == 403
    rows = AuditEvent.objects.filter(action="host.enrol").order_by("pk")
    assert [(r.result, r.host_id) for r in rows] == [("refused", None), ("refused", host.pk)]
    assert all(token not in json.dumps([r.params, r.message, r.after]) for r in rows)


@pytest.mark.parametrize("body", [{}, {"token": 5}, {"token": "x" * 201}, []])
def test_a_malformed_exchange_is_a_400(client, body):
    status, answer = _post(client, body)
    assert status == 400 and "token" in answer["error"]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite case")
def test_on_sqlite_the_exchange_says_it_does_not_apply_and_keeps_the_token(client, host, superuser):
    _, token = enrolment.issue_token(actor=superuser, ctx=RequestContext(), host=host, hours=1)
    status, answer = _post(client, {"token": token})
    assert status == 400 and "SQLite" in answer["error"]
    assert HostEnrolment.objects.get(host=host).used_at is None


def test_nothing_is_queued_for_a_revoked_host(host, superuser):
    enrolment.revoke(actor=superuser, ctx=RequestContext(), host=host, confirm=host.slug)
    with pytest.raises(Conflict, match="revoked"):
        services.create_container(actor=superuser, ctx=RequestContext(), host=host, name="late")


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite case")
def test_on_sqlite_the_role_command_says_there_are_none(host):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="on SQLite"):
        call_command("agent_db_role", host.slug)


@pytest.mark.parametrize("typed", ["٥", "+5", "1_0", " 5x", "", "0", "169"])
def test_a_token_lifetime_is_ascii_digits_from_1_to_168(typed):
    from console.enrolment import _hours

    with pytest.raises(InvalidInput, match="a token is valid for 1 to 168 hours"):
        _hours(typed)
    assert _hours(" 24 ") == 24
