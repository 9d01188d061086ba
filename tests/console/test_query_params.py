"""Query parameters of the list pages: a value that does not parse is a 400 that says why, never a 500.

Before, `/audit/?since=2026-02-30` (and `2026-13-45`, `0000-01-01`, `T25:00`) and a team POST with
`binding=abc` raised deep in Django (HTTP 500), an unknown status or state was silently ignored
(the page showed rows that were not asked for) and `page=abc` showed page 1.
"""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from console.models import AuditEvent, RoleBinding, Team

BAD_DATES = [
    "2026-02-30",
    "2026-13-45",
    "0000-01-01",
    "T25:00",
    "2026-01-01T25:00",
    "2026-01-01T10:61",
    "26-01-01",
    "2026-1-1",
    "\u0662\u0660\u0662\u0666-01-01",  # Arabic-Indic digits
    "2026-01-01\nx",
    "yesterday",
    "2026-01-01T10:00:00+25:00",
]


@pytest.mark.parametrize("key", ["since", "until"])
@pytest.mark.parametrize("value", BAD_DATES)
@pytest.mark.parametrize("who", ["outsider", "superuser"])
def test_bad_audit_dates_are_a_400_with_a_message(client, request, who, key, value):
    client.force_login(request.getfixturevalue(who))
    for extra in ({}, {"format": "csv"}, {"format": "json"}):
        response = client.get(reverse("audit-list"), {key: value, **extra})
        assert response.status_code == 400, (key, value, extra)
        page = html.unescape(response.content.decode())
        assert f"{key}: '{value[:40]}' is not a date (YYYY-MM-DD)" in page or "\n" in value
        assert f"{key}: " in page and "is not a date (YYYY-MM-DD)" in page


@pytest.mark.parametrize(
    "value", ["2026-02-28", "2026-02-28T10:00", "2026-02-28 10:00:59", "0001-01-01", "9999-12-31"]
)
def test_good_dates_are_accepted(client, superuser, value):
    client.force_login(superuser)
    assert client.get(reverse("audit-list"), {"since": value}).status_code == 200
    assert client.get(reverse("audit-list"), {"until": value}).status_code == 200


@pytest.mark.parametrize(
    "url, params, word",
    [
        ("audit-list", {"result": "maybe"}, "result: 'maybe' is not one of accepted"),
        ("audit-list", {"format": "xml"}, "format: 'xml' is not one of csv, json"),
        ("audit-list", {"page": "abc"}, "page: 'abc' is not a whole number"),
        ("audit-list", {"page": "0"}, "page: '0' is not a whole number"),
        ("audit-list", {"page": "-1"}, "page: '-1' is not a whole number"),
        ("audit-list", {"page": "\u0663"}, "is not a whole number"),
        ("operation-list", {"status": "done"}, "status: 'done' is not one of pending"),
        ("operation-list", {"page": "last"}, "page: 'last' is not a whole number"),
        ("containers:list", {"state": "ON"}, "state: 'ON' is not one of"),
        ("containers:list", {"page": "1.5"}, "page: '1.5' is not a whole number"),
    ],
)
def test_bad_list_parameters_are_a_400_with_a_message(client, viewer, url, params, word):
    client.force_login(viewer)
    response = client.get(reverse(url), params)
    assert response.status_code == 400
    assert word in html.unescape(response.content.decode())


@pytest.mark.parametrize("url", ["audit-list", "operation-list", "containers:list"])
def test_a_page_past_the_last_shows_the_last(client, viewer, url):
    client.force_login(viewer)
    assert client.get(reverse(url), {"page": "999"}).status_code == 200


@pytest.mark.parametrize("binding", ["abc", "", "0", "1.0", "\u0661", "9" * 30])
def test_revoking_a_binding_that_is_not_a_number_is_a_400_and_audited(client, superuser, binding):
    team = Team.objects.create(name="ops")
    kept = RoleBinding.objects.create(team=team, role="view", all_hosts=True)
    client.force_login(superuser)
    before = AuditEvent.objects.count()
    response = client.post(reverse("team-detail", args=[team.pk]), {"do": "revoke", "binding": binding})
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert f"binding: '{binding[:40]}' is not a whole number" in page
    assert RoleBinding.objects.filter(pk=kept.pk).exists()
    (row,) = AuditEvent.objects.order_by("pk")[before:]
    assert row.result == "refused" and row.action == "team"
