"""Container pages through the Django test client (nothing is enqueued: no transaction commits)."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from console.models import AuditEvent, Operation
from containers.models import Container


@pytest.fixture
def make_container(host):
    def make(name="web1", state="STOPPED", **kwargs):
        kwargs.setdefault("lxc_path", host.lxc_path)
        return Container.objects.create(host=host, name=name, state=state, **kwargs)

    return make


def rows(body):
    """Names of the containers listed in the table, in order."""
    return re.findall(r'<tr data-name="([^"]+)">', body)


# --- login required -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        lambda c: reverse("containers:list"),
        lambda c: reverse("containers:detail", args=[c.pk]),
        lambda c: reverse("containers:create"),
        lambda c: reverse("containers:destroy", args=[c.pk]),
    ],
    ids=["list", "detail", "create", "destroy"],
)
def test_anonymous_users_are_sent_to_the_login_page(client, make_container, url):
    path = url(make_container())
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={quote(path)}"


@pytest.mark.parametrize("action", ["start", "stop"])
def test_anonymous_post_of_an_action_queues_nothing(client, make_container, action):
    container = make_container(state="RUNNING" if action == "stop" else "STOPPED")
    response = client.post(reverse("containers:action", args=[container.pk, action]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert Operation.objects.count() == 0
    assert AuditEvent.objects.count() == 0


def test_anonymous_post_to_create_or_destroy_queues_nothing(client, host, make_container):
    container = make_container()
    client.post(reverse("containers:create"), {"host": "testhost", "name": "web9", "template": "busybox"})
    client.post(reverse("containers:destroy", args=[container.pk]), {"confirm": "web1"})
    assert Operation.objects.count() == 0


# --- create -------------------------------------------------------------------------------------


def test_create_form_refuses_a_bad_name_with_the_validation_message(client, admin, host):
    client.force_login(admin)
    response = client.post(
        reverse("containers:create"), {"host": "testhost", "name": "bad;name", "template": "busybox"}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert (
        "container names may contain only letters, digits, &#x27;-&#x27;, &#x27;_&#x27; and &#x27;.&#x27;"
        in body
    )
    assert 'value="bad;name"' in body  # the form is shown again with what was typed
    assert Operation.objects.count() == 0
    event = AuditEvent.objects.get()
    assert event.result == "refused" and event.params["name"] == "bad;name"


def test_create_form_refuses_a_template_that_is_not_offered(client, admin, host):
    client.force_login(admin)
    response = client.post(
        reverse("containers:create"), {"host": "testhost", "name": "web1", "template": "debian"}
    )
    assert response.status_code == 400
    assert Operation.objects.count() == 0


def test_create_form_refuses_an_unknown_lxc_path(client, admin, host):
    client.force_login(admin)
    response = client.post(
        reverse("containers:create"),
        {"host": "testhost", "name": "web1", "template": "busybox", "lxc_path": "/etc"},
    )
    assert response.status_code == 400
    assert "unknown LXC path" in response.content.decode()
    assert Operation.objects.count() == 0


def test_create_form_valid_post_redirects_to_the_operation(client, admin, host):
    client.force_login(admin)
    response = client.post(
        reverse("containers:create"),
        {"host": "testhost", "name": "web1", "template": "busybox"},
        HTTP_X_REQUEST_ID="test-request-0001",
        REMOTE_ADDR="192.0.2.55",
    )
    op = Operation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("operation-detail", args=[op.pk])
    assert op.kind == "container.create"
    assert op.params == {"name": "web1", "template": "busybox", "lxc_path": "/var/lib/lxc"}
    event = AuditEvent.objects.get()
    assert (event.result, event.operation, event.actor) == ("accepted", op, admin)
    # Issue 12.4: the id is the server's; the client's own is kept apart, for correlation.
    assert event.request_id == response["X-Request-ID"] != "test-request-0001"
    assert event.client_request_id == "test-request-0001"
    assert event.ip == "192.0.2.55"


def test_create_by_an_operator_is_forbidden(client, operator, host):
    client.force_login(operator)
    response = client.post(
        reverse("containers:create"), {"host": "testhost", "name": "web1", "template": "busybox"}
    )
    assert response.status_code == 403
    assert "your role does not allow" in response.content.decode()
    assert Operation.objects.count() == 0


def test_create_of_an_existing_name_conflicts(client, admin, make_container):
    make_container("web1")
    client.force_login(admin)
    response = client.post(
        reverse("containers:create"), {"host": "testhost", "name": "web1", "template": "busybox"}
    )
    assert response.status_code == 409
    assert "already exists" in response.content.decode()
    assert Operation.objects.count() == 0


# --- list ---------------------------------------------------------------------------------------


def test_list_search_filters_rows(client, viewer, make_container):
    make_container("alpha-web")
    make_container("beta-db", ips=["10.0.3.48"])
    make_container("gamma-cache")
    client.force_login(viewer)
    assert rows(client.get(reverse("containers:list")).content.decode()) == [
        "alpha-web",
        "beta-db",
        "gamma-cache",
    ]
    assert rows(client.get(reverse("containers:list"), {"q": "beta"}).content.decode()) == ["beta-db"]
    assert rows(client.get(reverse("containers:list"), {"q": "10.0.3.48"}).content.decode()) == ["beta-db"]
    body = client.get(reverse("containers:list"), {"q": "nothing-like-this"}).content.decode()
    assert rows(body) == [] and "No container matches these filters." in body


def test_list_filters_by_state(client, viewer, make_container):
    make_container("up", state="RUNNING")
    make_container("down", state="STOPPED")
    client.force_login(viewer)
    assert rows(client.get(reverse("containers:list"), {"state": "RUNNING"}).content.decode()) == ["up"]


def test_list_htmx_refresh_answers_only_the_rows(client, viewer, make_container):
    make_container("alpha")
    client.force_login(viewer)
    response = client.get(reverse("containers:list"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="container-rows")
    body = response.content.decode()
    assert rows(body) == ["alpha"]
    assert "<html" not in body and "<form" not in body


def test_list_paginates(client, viewer, make_container, settings):
    settings.PAGE_SIZE = 2
    for name in ["c1", "c2", "c3", "c4", "c5"]:
        make_container(name)
    client.force_login(viewer)
    body = client.get(reverse("containers:list")).content.decode()
    assert "Page 1 of 3" in body
    assert rows(body) == ["c1", "c2"]
    body = client.get(reverse("containers:list"), {"page": 3}).content.decode()
    assert "Page 3 of 3" in body
    assert rows(body) == ["c5"]


def test_list_pagination_links_keep_the_search(client, viewer, make_container, settings):
    settings.PAGE_SIZE = 1
    for name in ["web1", "web2", "db1"]:
        make_container(name)
    client.force_login(viewer)
    body = client.get(reverse("containers:list"), {"q": "web"}).content.decode()
    assert "Page 1 of 2" in body
    assert 'href="?q=web&page=2"' in body


def test_list_runs_a_constant_number_of_queries(client, viewer, make_container, settings):
    settings.PAGE_SIZE = 50
    client.force_login(viewer)
    base = make_container("base")

    def count():
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(reverse("containers:list"))
        return len(ctx.captured_queries), rows(response.content.decode())

    make_container("copy-0", origin=base, origin_kind="copy")
    few, listed = count()
    assert len(listed) == 2
    for i in range(1, 29):
        make_container(f"copy-{i}", origin=base, origin_kind="copy", ips=["10.0.3.1"], groups=["g"])
    many, listed = count()
    assert len(listed) == 30
    assert many == few


def test_detail_shows_the_container_and_its_origin(client, viewer, make_container):
    base = make_container("base")
    copy = make_container(
        "copy", state="RUNNING", pid=4242, ips=["10.0.3.9"], origin=base, origin_kind="copy"
    )
    client.force_login(viewer)
    body = client.get(reverse("containers:detail", args=[copy.pk])).content.decode()
    assert "4242" in body and "10.0.3.9" in body
    assert f'href="{reverse("containers:detail", args=[base.pk])}"' in body
    assert reverse("containers:destroy", args=[copy.pk]) not in body  # viewers get no destroy button


# --- actions ------------------------------------------------------------------------------------


def test_start_action_with_htmx_answers_the_operation_card(client, operator, make_container):
    container = make_container()
    client.force_login(operator)
    response = client.post(reverse("containers:action", args=[container.pk, "start"]), HTTP_HX_REQUEST="true")
    op = Operation.objects.get()
    assert response.status_code == 202
    assert f'id="operation-{op.pk}"' in response.content.decode()
    assert op.kind == "container.start"


def test_start_action_by_a_viewer_is_refused(client, viewer, make_container):
    container = make_container()
    client.force_login(viewer)
    response = client.post(reverse("containers:action", args=[container.pk, "start"]), HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    assert "your role does not allow" in response.content.decode()
    assert Operation.objects.count() == 0


def test_stop_action_refuses_a_bad_timeout(client, operator, make_container):
    container = make_container(state="RUNNING")
    client.force_login(operator)
    response = client.post(
        reverse("containers:action", args=[container.pk, "stop"]), {"timeout": "soon"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    assert "between 0 and 3600" in response.content.decode()
    assert Operation.objects.count() == 0


def test_unknown_action_is_404(client, admin, make_container):
    container = make_container()
    client.force_login(admin)
    response = client.post(reverse("containers:action", args=[container.pk, "reboot"]))
    assert response.status_code == 404
    assert Operation.objects.count() == 0


def test_actions_need_post(client, admin, make_container):
    container = make_container()
    client.force_login(admin)
    assert client.get(reverse("containers:action", args=[container.pk, "start"])).status_code == 405
    assert Operation.objects.count() == 0


# --- destroy ------------------------------------------------------------------------------------


@pytest.mark.parametrize("confirm", ["web2", "WEB1", "web", ""])
def test_destroy_refuses_a_wrong_confirmation(client, admin, make_container, confirm):
    container = make_container("web1")
    client.force_login(admin)
    response = client.post(reverse("containers:destroy", args=[container.pk]), {"confirm": confirm})
    assert response.status_code == 400
    assert Operation.objects.count() == 0
    assert Container.objects.filter(pk=container.pk).exists()
    if confirm.strip():
        assert "type web1 exactly to confirm" in response.content.decode()


def test_destroy_with_the_right_name_redirects_to_the_operation(client, admin, make_container):
    container = make_container("web1")
    client.force_login(admin)
    response = client.post(reverse("containers:destroy", args=[container.pk]), {"confirm": "web1"})
    op = Operation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("operation-detail", args=[op.pk])
    assert op.kind == "container.destroy" and op.params["stop_first"] is False


def test_destroy_blocked_by_snapshots_is_shown_disabled_and_refused_once(client, admin, make_container):
    base = make_container("web1")
    make_container("web1-snap", origin=base, origin_kind="snapshot")
    client.force_login(admin)
    body = client.get(reverse("containers:detail", args=[base.pk])).content.decode()
    assert reverse("containers:destroy", args=[base.pk]) not in body  # not offered...
    disabled = r'<button type="button" class="danger" disabled title="[^"]*web1-snap[^"]*"[^>]*>Destroy…'
    assert re.search(disabled, body)
    assert "Destroy is not possible: these snapshots depend on it: web1-snap" in body  # ...and why
    page = client.get(reverse("containers:destroy", args=[base.pk])).content.decode()
    assert re.search(r'<button type="submit" class="danger" disabled', page)
    # A page opened before the snapshot was taken still posts: the refusal is said once.
    response = client.post(reverse("containers:destroy", args=[base.pk]), {"confirm": "web1"})
    assert response.status_code == 409 and Operation.objects.count() == 0
    assert response.content.decode().count("web1-snap") == 1


def test_destroy_of_a_running_container_without_stop_first_conflicts(client, admin, make_container):
    container = make_container("web1", state="RUNNING")
    client.force_login(admin)
    response = client.post(reverse("containers:destroy", args=[container.pk]), {"confirm": "web1"})
    assert response.status_code == 409
    assert "stop it first" in response.content.decode()
    assert Operation.objects.count() == 0
    response = client.post(
        reverse("containers:destroy", args=[container.pk]), {"confirm": "web1", "stop_first": "on"}
    )
    assert response.status_code == 302
    assert Operation.objects.get().params["stop_first"] is True


def test_destroy_by_an_operator_is_forbidden(client, operator, make_container):
    container = make_container("web1")
    client.force_login(operator)
    response = client.post(reverse("containers:destroy", args=[container.pk]), {"confirm": "web1"})
    assert response.status_code == 403
    assert Operation.objects.count() == 0


def test_detail_names_the_volume_or_dataset_from_the_pool_reading(client, viewer, make_container):
    """An LVM or ZFS container's page shows its own volume/dataset as the agent last read the pool
    (outputs recorded in the VM tier: tests/storage/fixtures/vm_*)."""
    import json

    from storage.drivers.lvm import parse_lvs_json
    from storage.models import Pool
    from tests.storage.conftest import fixture_text

    snap = make_container("c1snap", rootfs="lvm:/dev/lxc/c1snap", store="lvm")
    lvs = [vars(lv) for lv in parse_lvs_json(fixture_text("vm_lvs_snapshot.json"))]
    Pool.objects.create(
        host=snap.host,
        name="vg",
        kind="lvm",
        vg_name="lxc",
        lxc_path=snap.lxc_path,
        details={"lvs": json.loads(json.dumps(lvs))},
    )
    client.force_login(viewer)
    body = client.get(reverse("containers:detail", args=[snap.pk])).content.decode()
    assert "logical volume lxc/c1snap, 100.0\xa0MB, snapshot of c1 (0.01% used)" in body, body
    assert 'on pool <a href="/storage/pools/' in body


# --- file browser: reads are POSTs; a GET only shows one of the user's own reads ----------------


def test_file_browser_post_queues_a_read_and_redirects_to_it(client, admin, operator, make_container):
    c = make_container(state="RUNNING", pid=4242)
    client.force_login(admin)
    url = reverse("containers:files", args=[c.pk])
    answer = client.post(url, {"path": "/srv/x&download=1"})
    op = Operation.objects.get(kind="container.files.list")
    assert answer.status_code == 303 and op.params["path"] == "/srv/x&download=1"
    assert answer["Location"] == f"{url}?path=%2Fsrv%2Fx%26download%3D1&op={op.pk}"
    assert AuditEvent.objects.filter(action="container.files.list", result="accepted", actor=admin).exists()
    shown = client.get(answer["Location"]).content.decode()
    assert "/srv/x&amp;download=1" in shown and f"/files/result/{op.pk}/" in shown

    client.post(url, {"file": "/etc/hosts"})
    assert Operation.objects.get(kind="container.files.read").params["path"] == "/etc/hosts"

    # Another user's read, another container's, or a malformed id: not shown.
    client.force_login(operator)
    assert client.get(url, {"op": op.pk}).status_code == 404
    client.force_login(admin)
    other = make_container(name="web2", state="RUNNING", pid=4343)
    assert client.get(reverse("containers:files", args=[other.pk]), {"op": op.pk}).status_code == 404
    for bad in ("x", "١", "-1", "9" * 30):
        assert client.get(url, {"op": bad}).status_code == 404
    assert Operation.objects.count() == 2


# --- limits -------------------------------------------------------------------------------------


def test_limits_show_saved_and_live_sizes_in_the_same_unit(client, admin, make_container):
    c = make_container(
        "web1",
        state="RUNNING",
        config_text="lxc.cgroup.memory.limit_in_bytes = 256M\nlxc.cgroup.cpu.shares = 512\n",
        cgroup_live={
            "memory.limit_in_bytes": "268435456",
            "memory.memsw.limit_in_bytes": "9223372036854771712",  # the kernel's "no limit"
        },
    )
    client.force_login(admin)
    body = client.get(reverse("containers:limits", args=[c.pk])).content.decode()
    row = body.split('data-key="memory.limit_in_bytes"')[1].split("</tr>")[0]
    saved = re.search(r'<td class="saved"[^>]*>([^<]*)</td>', row).group(1)
    live = re.search(r'<td class="live"[^>]*>([^<]*)</td>', row).group(1)
    assert saved == live == "256 MiB"
    assert "differs" not in row
    memsw = body.split('data-key="memory.memsw.limit_in_bytes"')[1].split("</tr>")[0]
    assert ">unlimited<" in memsw


def test_a_saved_limit_can_be_removed_and_an_unsaved_one_is_refused(client, admin, make_container):
    c = make_container("web1", config_text="lxc.cgroup.memory.limit_in_bytes = 256M\n")
    client.force_login(admin)
    body = client.get(reverse("containers:limits", args=[c.pk])).content.decode()
    assert body.count('name="remove"') == 1 and 'value="memory.limit_in_bytes"' in body
    response = client.post(reverse("containers:limits", args=[c.pk]), {"remove": "cpu.shares"})
    assert response.status_code == 409 and "has no saved limit" in response.content.decode()
    assert Operation.objects.count() == 0
    response = client.post(reverse("containers:limits", args=[c.pk]), {"remove": "memory.limit_in_bytes"})
    op = Operation.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("operation-detail", args=[op.pk])
    assert op.kind == "container.limit.remove" and op.params["key"] == "memory.limit_in_bytes"
    event = AuditEvent.objects.filter(action="container.limit.remove", result="accepted").get()
    assert event.before == {"saved": "256M"} and event.after == {"saved": None}
