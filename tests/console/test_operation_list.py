"""The Operations list: filters by kind and by user, cancel from a row, flat query count."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from console.models import AuditEvent, Operation


def ops(host, actor, n: int, kind: str = "container.start", status: str = "succeeded") -> list[Operation]:
    return [
        Operation.objects.create(
            kind=kind,
            host=host,
            actor=actor,
            target=f"container t{i}",
            lock_key=f"{kind}:{actor}:{i}:{status}",
            status=status,
        )
        for i in range(n)
    ]


def rows(response) -> str:
    return response.content.decode().split('id="operation-rows"')[1]


def test_filter_by_kind_and_by_user(client, admin, operator, host):
    ops(host, admin, 2, kind="container.start")
    ops(host, operator, 1, kind="container.stop")
    ops(host, None, 1, kind="host.autostart")
    client.force_login(admin)
    url = reverse("operation-list")
    assert rows(client.get(url, {"kind": "container.stop"})).count("<tr>") == 1 + 1  # header + row
    assert rows(client.get(url, {"by": admin.username})).count("container.start") == 2
    page = rows(client.get(url, {"by": "system"}))
    assert "host.autostart" in page and "container.start" not in page
    assert "No operations match these filters" in rows(client.get(url, {"by": "nobody-at-all"}))
    # A kind that does not exist is a clear 400, not an empty page.
    assert client.get(url, {"kind": "rm -rf"}).status_code == 400


def test_cancel_from_the_list_answers_a_line_and_refreshes_the_rows(client, operator, viewer, host):
    (pending,) = ops(host, operator, 1, status="pending")
    client.force_login(viewer)
    assert 'action="/operations/' not in rows(client.get(reverse("operation-list")))
    client.force_login(operator)
    assert f'action="{reverse("operation-cancel", args=[pending.pk])}"' in rows(
        client.get(reverse("operation-list"))
    )
    response = client.post(
        reverse("operation-cancel", args=[pending.pk]),
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="operation-list-message",
    )
    assert response.status_code == 200 and response["HX-Trigger"] == "operation-finished"
    assert f"Operation #{pending.pk} cancelled; its target is free." in response.content.decode()
    assert "<html" not in response.content.decode()
    pending.refresh_from_db()
    assert pending.status == "cancelled"
    assert AuditEvent.objects.filter(action="operation.cancel", result="succeeded").count() == 1
    # Ended already: refused in the same place, nothing changes.
    again = client.post(
        reverse("operation-cancel", args=[pending.pk]),
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="operation-list-message",
    )
    assert again.status_code == 409 and "has ended already" in again.content.decode()


def test_the_list_with_cancel_buttons_runs_the_same_queries_for_few_and_many_rows(client, operator, host):
    host.last_heartbeat = timezone.now()
    host.save()
    client.force_login(operator)
    ops(host, operator, 2, status="pending")
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("operation-list"))
    ops(host, operator, 40, kind="container.stop", status="pending")
    with CaptureQueriesContext(connection) as many:
        page = client.get(reverse("operation-list"))
    assert rows(page).count(">Cancel</button>") == 42
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
