"""NUL characters: refused where a request enters, stored as U+2400 where text from elsewhere lands.

These run on SQLite and PostgreSQL (`make test` runs both). PostgreSQL cannot store a NUL in text or
jsonb at all, so each of these was an HTTP 500 or a failed write there before.
"""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from console.input_guard import NUL_MARK, nul_message, storable
from console.models import AuditEvent, Operation
from console.operations import RequestContext, start_operation
from containers import services
from containers.models import Container

CTX = RequestContext(ip="192.0.2.1", request_id="nul-tests-0001")


def body(response) -> str:
    return html.unescape(response.content.decode())


@pytest.mark.django_db
def test_a_nul_in_a_list_filter_is_refused_not_a_server_error(client, admin, host):
    client.force_login(admin)
    response = client.get(reverse("containers:list"), {"q": "web\x00"})
    assert response.status_code == 400
    assert nul_message("the field 'q'") in body(response)
    # The same filter without the NUL is a normal page (the refusal is about the NUL only).
    assert client.get(reverse("containers:list"), {"q": "web"}).status_code == 200


@pytest.mark.django_db
def test_a_nul_in_the_address_is_refused(client, admin, host):
    client.force_login(admin)
    c = Container.objects.create(host=host, name="web1", lxc_path="/var/lib/lxc", state="STOPPED")
    response = client.post(f"/containers/{c.pk}/start%00/", HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert nul_message("the address") in body(response)
    assert Operation.objects.count() == 0


@pytest.mark.django_db
def test_a_nul_in_the_login_form_is_refused_before_the_lockout_counter_queries(client, make_user):
    make_user("alice", password="a-long-test-password")
    response = client.post(reverse("login"), {"username": "alice\x00", "password": "x"})
    assert response.status_code == 400
    assert nul_message("the field 'username'") in body(response)
    assert "_auth_user_id" not in client.session
    row = AuditEvent.objects.get()
    assert (row.action, row.result, row.actor_name) == ("request.refused", "refused", "system")
    assert row.params == {"username": f"alice{NUL_MARK}"}  # the password is never copied


@pytest.mark.django_db
def test_a_session_key_that_django_cannot_have_made_names_no_session_and_reaches_no_query():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from console.sessions import SessionStore

    with CaptureQueriesContext(connection) as queries:
        store = SessionStore("abcdefgh\x00ijkl")
        assert store.load() == {}
    assert store.session_key is None
    assert not [q["sql"] for q in queries.captured_queries if "\x00" in q["sql"]]


@pytest.mark.django_db
def test_a_nul_in_a_session_cookie_is_refused_before_the_session_is_looked_up(client):
    # Django unquotes octal escapes in a quoted cookie value: "\000" becomes a NUL character,
    # which the session middleware would otherwise put into a query on django_session.
    response = client.get(reverse("containers:list"), HTTP_COOKIE='sessionid="abcdefgh\\000ijkl"')
    assert response.status_code == 400
    assert nul_message("a cookie") in body(response)


@pytest.mark.django_db
def test_a_service_refusal_with_a_nul_is_audited_with_the_mark_and_says_what_is_wrong(admin, host):
    """Below the request layer (a management command, the shell): the validator's message, and the
    audit row of the refusal keeps the value with U+2400 in place of the NUL instead of failing."""
    from console.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        services.create_container(actor=admin, ctx=CTX, host=host, name="a\x00b")
    assert "letters, digits" in refused.value.message
    row = AuditEvent.objects.get(action="container.create")
    assert row.result == "refused"
    assert row.params["name"] == f"a{NUL_MARK}b"
    assert row.target.endswith(f"a{NUL_MARK}b")
    assert Operation.objects.count() == 0


@pytest.mark.django_db
def test_command_output_with_nul_bytes_is_stored(admin, host):
    """/proc/<pid>/cmdline and friends print NUL bytes; an operation's log and result keep them as U+2400."""
    op = start_operation(
        actor=admin, ctx=CTX, host=host, kind="container.attach", target="t", lock_key="nul-test", params={}
    )
    op.append_log("sh\x00-c\x00true\x00\n")
    op.finish("failed", error="exit 1: a\x00b", result={"out\x00": ["x\x00"]})
    op.refresh_from_db()
    assert op.log == f"sh{NUL_MARK}-c{NUL_MARK}true{NUL_MARK}\n"
    assert op.error == f"exit 1: a{NUL_MARK}b"
    assert op.result == {f"out{NUL_MARK}": [f"x{NUL_MARK}"]}


def test_storable_replaces_nul_everywhere_and_leaves_other_values_alone():
    value = {"a\x00": ["b\x00", ("c", 1, None)], "n": 5, "ok": "tab\tand\nnewline"}
    assert storable(value) == {
        f"a{NUL_MARK}": [f"b{NUL_MARK}", ("c", 1, None)],
        "n": 5,
        "ok": "tab\tand\nnewline",
    }
    assert storable(None) is None


@pytest.mark.django_db
def test_a_nul_in_a_password_link_is_refused_and_audited_without_the_address(client):
    response = client.post("/password/" + "%00" * 20 + "/", {"new_password1": "x", "new_password2": "x"})
    assert response.status_code == 400
    assert nul_message("the address") in body(response)
    row = AuditEvent.objects.get()
    assert (row.action, row.result, row.target) == ("request.refused", "refused", "user-set-password")


@pytest.mark.django_db
def test_a_nul_beside_a_valid_password_link_never_writes_its_token_into_the_trail(client, superuser):
    from django.contrib.auth import get_user_model

    from console import user_services

    erin = get_user_model().objects.create_user("erin", password="a-long-test-password")
    link = user_services.reset_password(actor=superuser, ctx=CTX, user=erin)
    token = link.path.rstrip("/").rsplit("/", 1)[1]
    response = client.post(link.path, {"new_password1": "a\x00b", "new_password2": "a\x00b"})
    assert response.status_code == 400
    assert nul_message("the field 'new_password1'") in body(response)
    refused = AuditEvent.objects.get(result="refused")
    assert refused.target == "user-set-password"
    assert refused.params == {}  # the passwords are never copied either
    for row in AuditEvent.objects.all():
        assert token not in f"{row.target} {row.params} {row.message} {row.before} {row.after}"
