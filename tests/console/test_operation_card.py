"""The polled operation card and an operation's page: when polling stops, the log tail, agent warnings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from console.models import Operation


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_card_of_a_terminal_operation_stops_htmx_polling(client, viewer, op, status):
    Operation.objects.filter(pk=op.pk).update(status=status, error="boom" if status == "failed" else "")
    client.force_login(viewer)
    response = client.get(reverse("operation-card", args=[op.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 286
    assert response["HX-Trigger"] == "operation-finished"
    body = response.content.decode()
    assert f'id="operation-{op.pk}"' in body
    assert f'data-status="{status}"' in body
    assert "hx-trigger=" not in body


def test_card_of_a_pending_operation_keeps_polling(client, viewer, op):
    client.force_login(viewer)
    response = client.get(reverse("operation-card", args=[op.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert f'hx-trigger="sse:operation-{op.pk}, every 10s"' in body
    assert f'hx-get="{reverse("operation-card", args=[op.pk])}"' in body


def test_a_card_rendered_with_its_page_reads_itself_once(client, viewer, op):
    """The operation may end before the page's listener for its event is there (an agent answers
    in milliseconds): a card rendered with its page asks once more as it loads; its refreshes
    (the card view) do not, or an active card would poll without pause."""
    client.force_login(viewer)
    body = client.get(reverse("operation-detail", args=[op.pk])).content.decode()
    assert f'hx-trigger="sse:operation-{op.pk}, every 10s, load"' in body


def test_card_of_a_running_operation_keeps_polling_and_shows_the_log_tail(client, viewer, op):
    lines = "".join(f"line {i}\n" for i in range(100))
    Operation.objects.filter(pk=op.pk).update(status="running", log=lines, progress=40)
    client.force_login(viewer)
    response = client.get(reverse("operation-card", args=[op.pk]), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and f'hx-trigger="sse:operation-{op.pk}, every 10s"' in body
    assert "line 99" in body and "line 60" in body
    assert "line 59\n" not in body  # only the tail of the transcript
    assert 'value="40"' in body


def test_card_without_htmx_is_a_plain_page_even_when_terminal(client, viewer, op):
    Operation.objects.filter(pk=op.pk).update(status="succeeded")
    client.force_login(viewer)
    response = client.get(reverse("operation-card", args=[op.pk]))
    assert response.status_code == 200
    assert "HX-Trigger" not in response


def test_pending_operation_without_an_agent_heartbeat_says_so(client, viewer, op, host):
    assert host.last_heartbeat is None
    client.force_login(viewer)
    body = client.get(reverse("operation-card", args=[op.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "No agent for host testhost" in body


def test_pending_operation_with_a_live_agent_has_no_warning(client, viewer, op, host):
    host.last_heartbeat = timezone.now()
    host.save()
    client.force_login(viewer)
    body = client.get(reverse("operation-card", args=[op.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "No agent for host" not in body


def test_pending_operation_with_a_stale_heartbeat_warns(client, viewer, op, host, settings):
    host.last_heartbeat = timezone.now() - timedelta(seconds=settings.AGENT_OFFLINE_AFTER_SECONDS + 5)
    host.save()
    client.force_login(viewer)
    body = client.get(reverse("operation-card", args=[op.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "No agent for host testhost" in body


def test_operation_detail_shows_the_full_log_and_equivalent_commands(client, viewer, op):
    lines = "".join(f"line {i}\n" for i in range(100))
    Operation.objects.filter(pk=op.pk).update(
        status="succeeded",
        log=lines,
        commands=[{"argv": ["lxc-start", "-n", "web 1"], "exit": 0, "seconds": 0.1}],
    )
    client.force_login(viewer)
    body = client.get(reverse("operation-detail", args=[op.pk])).content.decode()
    assert "line 0\n" in body and "line 99" in body
    assert "lxc-start -n &#x27;web 1&#x27;" in body


def test_unknown_operation_is_404(client, viewer):
    client.force_login(viewer)
    assert client.get(reverse("operation-card", args=[99999])).status_code == 404
