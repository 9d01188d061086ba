"""Operation and audit lists: filters, file reads on request, a constant number of queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from console.models import Operation
from console.operations import RequestContext, audit
from tests.console.conftest import make_rows


def test_operation_list_filters_by_status(client, viewer, host):
    Operation.objects.create(
        kind="container.start", host=host, target="container testhost/alpha", lock_key="a"
    )
    Operation.objects.create(
        kind="container.stop", host=host, target="container testhost/bravo", lock_key="b", status="failed"
    )
    client.force_login(viewer)
    body = client.get(reverse("operation-list"), {"status": "failed"}).content.decode()
    assert "testhost/bravo" in body and "testhost/alpha" not in body


def test_file_reads_are_listed_only_when_asked_for(client, viewer, host):
    """Each file-browser click is an audited read operation: kept out of the Operations list and
    the host page unless "file reads" is ticked (issue 11)."""
    Operation.objects.create(
        kind="container.start", host=host, target="container testhost/alpha", lock_key="a"
    )
    for kind in ("container.files.list", "container.files.read"):
        Operation.objects.create(
            kind=kind, host=host, target="container testhost/reads", lock_key=f"r:{kind}"
        )
    client.force_login(viewer)
    # The list's rows (its Kind filter names every kind, the read kinds too).
    for body in (
        client.get(reverse("operation-list")).content.decode().split('id="operation-rows"')[1],
        client.get(reverse("host-detail", args=[host.slug])).content.decode(),
    ):
        assert "testhost/alpha" in body and "container.files" not in body
    body = client.get(reverse("operation-list"), {"reads": "1"}).content.decode()
    assert "container.files.list" in body and "container.files.read" in body and "testhost/alpha" in body
    assert 'name="reads" value="1" checked' in body


def count_queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode()


@pytest.mark.parametrize("page", ["audit-list", "operation-list"])
def test_lists_run_a_constant_number_of_queries(client, admin, host, page, settings):
    settings.PAGE_SIZE = 50
    client.force_login(admin)
    make_rows(host, admin, 0, 2)
    few, body = count_queries(client, reverse(page))
    assert body.count("testhost/c") >= 2
    make_rows(host, admin, 2, 30)
    many, body = count_queries(client, reverse(page))
    assert all(f"testhost/c{i}<" in body for i in range(30))
    assert many == few


def test_audit_list_filters_by_result(client, admin, host):
    audit(actor=admin, ctx=RequestContext(), action="container.create", result="refused", target="t-refused")
    audit(
        actor=admin, ctx=RequestContext(), action="container.create", result="accepted", target="t-accepted"
    )
    client.force_login(admin)
    body = client.get(reverse("audit-list"), {"result": "refused"}).content.decode()
    assert "t-refused" in body and "t-accepted" not in body
