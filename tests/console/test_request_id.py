"""The request id is the server's: a client's X-Request-ID never decides whether a row is written
(issue 12.4: sending the id of an existing audit row suppressed the row of a refused POST)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from console.models import AuditEvent
from console.operations import RequestContext, audit

pytestmark = pytest.mark.django_db

KNOWN = "known-request-id-0001"


@pytest.fixture
def existing_row():
    return audit(actor=None, ctx=RequestContext(request_id=KNOWN), action="test.earlier", result="succeeded")


def new_rows(before: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.order_by("pk")[before:])


def test_a_refused_post_with_the_id_of_an_existing_row_still_writes_its_row(
    client, admin, host, existing_row
):
    client.force_login(admin)
    before = AuditEvent.objects.count()
    # A form that does not parse: refused in the view, before any service writes a row.
    response = client.post(reverse("storage:pool-create"), {}, HTTP_X_REQUEST_ID=KNOWN)
    assert response.status_code == 400
    rows = new_rows(before)
    assert [(r.action, r.result) for r in rows] == [("storage.pool.create", "refused")]
    assert rows[0].request_id == response["X-Request-ID"] != KNOWN
    assert rows[0].client_request_id == KNOWN


def test_totp_start_with_the_id_of_an_existing_row_is_audited(client, viewer, existing_row):
    client.force_login(viewer)
    before = AuditEvent.objects.count()
    response = client.post(reverse("account-totp-start"), HTTP_X_REQUEST_ID=KNOWN)
    assert response.status_code == 302
    assert TOTPDevice.objects.filter(user=viewer, confirmed=False).exists()
    rows = new_rows(before)
    assert [(r.action, r.result, r.actor_id) for r in rows] == [
        ("account.totp.start", "succeeded", viewer.pk)
    ]
    assert rows[0].request_id != KNOWN and rows[0].client_request_id == KNOWN


@pytest.mark.parametrize(
    "sent",
    ["short", "x" * 65, "bad id with spaces", "id\nwith-newline", "=HYPERLINK(x)", "ид-кириллица-1"],
)
def test_a_client_id_that_is_not_safe_is_not_kept(client, viewer, sent):
    client.force_login(viewer)
    before = AuditEvent.objects.count()
    client.post(reverse("account-totp-start"), HTTP_X_REQUEST_ID=sent)
    (row,) = new_rows(before)
    assert row.client_request_id == "" and len(row.request_id) == 32


def test_every_request_gets_a_new_server_id(client, viewer):
    client.force_login(viewer)
    first = client.get(reverse("account"), HTTP_X_REQUEST_ID=KNOWN)["X-Request-ID"]
    second = client.get(reverse("account"), HTTP_X_REQUEST_ID=KNOWN)["X-Request-ID"]
    assert KNOWN not in (first, second) and first != second
