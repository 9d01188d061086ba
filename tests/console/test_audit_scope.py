"""Who reads which audit rows, on the page and in both exports, per role; refusals keep their host.

A fixed set of rows made by several users on two hosts (and without a host) is read by a
superuser, an admin of host A, a viewer and an operator of host A, an admin of host B and an
outsider; each must see exactly the rows the rules in console.audit_scope give them.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.urls import reverse

from console.models import AuditEvent, Host
from console.operations import RequestContext, audit
from tests.console.test_audit_rows import POST_ROUTES, url_for, world  # noqa: F401  (fixture)

CTX = RequestContext(ip="192.0.2.10", request_id="scope-test")

# (row name, actor, host, result); the row's target is its name, so every view can be compared.
ROWS = [
    ("r-ada-a-accepted", "ada", "alpha", "accepted"),
    ("r-ada-a-refused", "ada", "alpha", "refused"),
    ("r-bob-b-accepted", "bob", "beta", "accepted"),
    ("r-bob-b-refused", "bob", "beta", "refused"),
    ("r-vic-a-refused", "vic", "alpha", "refused"),
    ("r-opal-a-accepted", "opal", "alpha", "accepted"),
    ("r-opal-b-failed", "opal", "beta", "failed"),
    ("r-otto-a-refused", "otto", "alpha", "refused"),
    ("r-otto-b-refused", "otto", "beta", "refused"),
    ("r-otto-nohost", "otto", None, "succeeded"),
    ("r-sue-nohost", "sue", None, "succeeded"),
    ("r-system-a", None, "alpha", "succeeded"),
]

EXPECTED = {
    # Superusers read everything.
    "sue": {name for name, *_ in ROWS},
    # Admin of alpha: every alpha row (refusals of others included) and their own.
    "ada": {
        "r-ada-a-accepted",
        "r-ada-a-refused",
        "r-vic-a-refused",
        "r-opal-a-accepted",
        "r-otto-a-refused",
        "r-system-a",
    },
    # Admin of beta only.
    "bob": {"r-bob-b-accepted", "r-bob-b-refused", "r-opal-b-failed", "r-otto-b-refused"},
    # Viewer of alpha: alpha rows except other users' refusals, and their own refusal.
    "vic": {"r-ada-a-accepted", "r-opal-a-accepted", "r-system-a", "r-vic-a-refused"},
    # Operator of alpha, with own rows on beta (where they no longer have a role).
    "opal": {"r-ada-a-accepted", "r-opal-a-accepted", "r-system-a", "r-opal-b-failed"},
    # Outsider: own rows only.
    "otto": {"r-otto-a-refused", "r-otto-b-refused", "r-otto-nohost"},
}


@pytest.fixture
def people(db, make_user):
    alpha = Host.objects.create(slug="alpha", name="alpha")
    beta = Host.objects.create(slug="beta", name="beta")
    users = {
        "sue": make_user("sue", role=None, superuser=True),
        "ada": make_user("ada", role="admin", hosts=[alpha]),
        "bob": make_user("bob", role="admin", hosts=[beta]),
        "vic": make_user("vic", role="view", hosts=[alpha]),
        "opal": make_user("opal", role="operate", hosts=[alpha]),
        "otto": make_user("otto", role=None),
    }
    hosts = {"alpha": alpha, "beta": beta}
    for name, actor, host, result in ROWS:
        audit(
            actor=users.get(actor) if actor else None,
            ctx=CTX,
            action="container.start",
            result=result,
            host=hosts.get(host) if host else None,
            target=name,
            params={"row": name},
        )
    return users


def page_targets(client) -> set[str]:
    body = client.get(reverse("audit-list")).content.decode()
    return set(re.findall(r"<td>(r-[a-z-]+)</td>", body))


def json_events(client, **query) -> list[dict]:
    response = client.get(reverse("audit-list"), {"format": "json", **query})
    assert response.status_code == 200
    return json.loads(b"".join(response.streaming_content) if response.streaming else response.content)[
        "events"
    ]


def csv_rows(client, **query) -> list[dict]:
    response = client.get(reverse("audit-list"), {"format": "csv", **query})
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.DictReader(io.StringIO(body.decode())))


@pytest.mark.parametrize("who", sorted(EXPECTED))
def test_each_role_reads_exactly_its_rows_on_the_page_and_in_both_exports(client, people, who):
    client.force_login(people[who])
    expected = EXPECTED[who]
    assert page_targets(client) == expected
    assert {e["target"] for e in json_events(client)} == expected
    assert {r["target"] for r in csv_rows(client)} == expected


@pytest.mark.parametrize("who", ["sue", "ada", "vic"])
def test_filtering_by_another_user_keeps_the_scope(client, people, who):
    """The reported bug: a superuser filtering by another user got only their own rows."""
    client.force_login(people[who])
    expected = {name for name, actor, *_ in ROWS if actor == "otto"} & EXPECTED[who]
    assert {e["target"] for e in json_events(client, actor="otto")} == expected
    if who == "sue":
        assert expected == {"r-otto-a-refused", "r-otto-b-refused", "r-otto-nohost"}


def test_hosts_are_named_only_to_users_who_may_see_them(client, people):
    client.force_login(people["otto"])
    events = {e["target"]: e for e in json_events(client)}
    # The outsider's own refusals aimed at alpha and beta do not say where the objects live...
    assert {e["host"] for e in events.values()} == {None}
    assert {r["host"] for r in csv_rows(client)} == {""}
    # ... and filtering by a host they cannot see finds nothing.
    assert json_events(client, host="alpha") == []
    client.force_login(people["ada"])
    events = {e["target"]: e["host"] for e in json_events(client)}
    assert events["r-otto-a-refused"] == "alpha"
    assert [e["target"] for e in json_events(client, host="alpha", actor="otto")] == ["r-otto-a-refused"]
    client.force_login(people["sue"])
    events = {e["target"]: e["host"] for e in json_events(client)}
    assert events["r-otto-b-refused"] == "beta" and events["r-sue-nohost"] is None


# The routes aimed at something on a host: every app route (containers, storage, networks) and the
# host's own page; the console's account, user and team pages act on no host.
HOST_ROUTES = [n for n in POST_ROUTES if ":" in n or n == "host-update"]


@pytest.mark.parametrize("name", HOST_ROUTES)
def test_a_refusal_before_the_service_is_stored_with_the_host_it_aimed_at(
    name,
    client,
    world,  # noqa: F811
    make_user,
):
    outsider = make_user("otto", role=None)
    admin_here = make_user("ada", role="admin", hosts=[world["host"]])
    other = Host.objects.create(slug="elsewhere", name="elsewhere")
    admin_elsewhere = make_user("bob", role="admin", hosts=[other])
    client.force_login(outsider)
    before = AuditEvent.objects.count()
    response = client.post(url_for(name, world), {"host": world["host"].slug})
    assert response.status_code in (403, 404), response.status_code
    (row,) = AuditEvent.objects.order_by("pk")[before:]
    assert row.result == "refused" and row.actor_id == outsider.pk
    assert row.host_id == world["host"].pk, name

    client.force_login(admin_here)
    assert row.pk in {e["id"] for e in json_events(client)}
    client.force_login(admin_elsewhere)
    assert row.pk not in {e["id"] for e in json_events(client)}
    client.force_login(outsider)
    (mine,) = [e for e in json_events(client) if e["id"] == row.pk]
    assert mine["host"] is None


@pytest.mark.parametrize("who", ["sue", "ada", "vic", "otto"])
@pytest.mark.parametrize("query", [{}, {"host": "alpha"}, {"team": "team-ada"}, {"since": "2020-01-01"}])
def test_the_audit_page_runs_the_same_queries_for_few_and_many_rows(client, people, who, query):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.console.conftest import make_rows

    alpha = Host.objects.get(slug="alpha")

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("audit-list"), query).status_code == 200
        return len(ctx.captured_queries)

    client.force_login(people[who])
    make_rows(alpha, people["ada"], 0, 1)
    make_rows(alpha, people[who], 1, 2)
    few = queries()
    make_rows(alpha, people["ada"], 2, 17)
    make_rows(alpha, people[who], 17, 32)
    assert queries() == few
