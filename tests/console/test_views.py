"""Console pages: login required, the polled operation card, and query counts that do not grow."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from console.models import Operation
from console.operations import RequestContext, audit


@pytest.fixture
def op(host, admin):
    return Operation.objects.create(
        kind="container.start", actor=admin, host=host, target="container testhost/web1", lock_key="k:web1"
    )


@pytest.mark.parametrize(
    "url",
    [
        lambda op: reverse("operation-list"),
        lambda op: reverse("operation-detail", args=[op.pk]),
        lambda op: reverse("operation-card", args=[op.pk]),
        lambda op: reverse("audit-list"),
        lambda op: reverse("host-list"),
        lambda op: reverse("host-detail", args=["testhost"]),
        lambda op: reverse("storage:index"),
        lambda op: reverse("networks:index"),
    ],
    ids=["operations", "operation", "card", "audit", "hosts", "host", "storage", "networks"],
)
def test_anonymous_users_are_sent_to_the_login_page(client, op, url):
    path = url(op)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={quote(path)}"


def test_home_redirects_to_the_container_list(client, admin):
    client.force_login(admin)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == reverse("containers:list")


# --- the operation card -------------------------------------------------------------------------


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


# --- lists --------------------------------------------------------------------------------------


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


def make_rows(host, admin, first, last):
    """Operations c<first>..c<last-1>, each with the audit event that accepted it."""
    ctx = RequestContext(ip="192.0.2.1", request_id="r" * 12)
    for i in range(first, last):
        op = Operation.objects.create(
            kind="container.start",
            actor=admin,
            host=host,
            target=f"container testhost/c{i}",
            lock_key=f"k{i}",
            status="succeeded" if i % 2 else "failed",
        )
        audit(
            actor=admin,
            ctx=ctx,
            action="container.start",
            result="accepted",
            host=host,
            target=op.target,
            params={"name": f"c{i}"},
            before={"state": "STOPPED"},
            operation=op,
        )


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


def test_superuser_edits_a_host_and_the_change_is_audited(client, superuser, host):
    from console.models import AuditEvent

    client.force_login(superuser)
    response = client.post(
        reverse("host-update", args=[host.slug]),
        {"name": "Rack 4 node", "address": "10.9.8.7", "libvirt_uri": "lxc:///"},
    )
    assert response.status_code == 302
    host.refresh_from_db()
    assert host.name == "Rack 4 node" and host.address == "10.9.8.7"
    event = AuditEvent.objects.get(action="host.update", result="succeeded")
    assert event.before["name"] == "test host" and event.after["name"] == "Rack 4 node"
    bad = client.post(
        reverse("host-update", args=[host.slug]), {"name": "x", "libvirt_uri": "file:///etc/passwd"}
    )
    assert bad.status_code == 400
    host.refresh_from_db()
    assert host.libvirt_uri == "lxc:///"


def test_host_page_shows_the_lxc_system_defaults_and_offers_the_form_to_admins(client, admin, viewer, host):
    host.capabilities = {
        **host.capabilities,
        "lxc": {
            **host.capabilities["lxc"],
            "system_config": {"lxc.lxcpath": "/var/lib/lxc", "lxc.cgroup.use": ""},
        },
    }
    host.save()
    client.force_login(admin)
    page = client.get(f"/hosts/{host.slug}/").content.decode()
    assert "<code>lxc.lxcpath</code></td><td><code>/var/lib/lxc</code>" in page
    assert '<code>lxc.cgroup.use</code></td><td><span class="muted">not set</span>' in page
    assert f"/containers/hosts/{host.slug}/lxc-conf/" in page
    client.force_login(viewer)
    page = client.get(f"/hosts/{host.slug}/").content.decode()
    assert "<code>/var/lib/lxc</code>" in page and "/lxc-conf/" not in page
