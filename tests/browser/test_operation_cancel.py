"""An operation queued while its host's agent is offline can be cancelled by an operator or admin
of the host from its page (after a confirm): the target is free again at once, and the cancelled
operation never runs when the agent returns. Viewers get no cancel button. An operation left
running by an agent that went offline says so, the host's page counts what waits for its agent,
and an operation whose outcome was checked after an agent restart says that too."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from console.models import AuditEvent, Host, Operation
from containers.models import Container
from tests.browser.helpers import PASSWORD, SHOTS, busybox, login
from tests.hosttools import wait_for

pytestmark = [pytest.mark.host, pytest.mark.browser]
CANCEL = "Cancel this operation"


def _cancel_button(page):
    return page.get_by_role("button", name=CANCEL, exact=True)


def _cancel_buttons_seen(browser, base_url: str, username: str, op: Operation) -> int:
    context = browser.new_context()
    other = context.new_page()
    login(other, base_url, username)
    other.goto(f"{base_url}/operations/{op.pk}/")
    card = other.locator(f"#operation-{op.pk}[data-status=pending]")
    card.wait_for(timeout=10000)
    assert "No agent for host" in card.inner_text(), username
    seen = _cancel_button(other).count()
    context.close()
    return seen


def test_admin_cancels_a_pending_start_and_it_never_runs(browser, page, web, make_user, start_agent):
    base_url = f"http://{web}"  # uvicorn: the page's event stream pushes the pending start
    make_user("cancel-admin", role="admin", password=PASSWORD)
    make_user("cancel-operator", role="operate", password=PASSWORD)
    make_user("cancel-viewer", role="view", password=PASSWORD)
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    name = f"cancel-{uuid.uuid4().hex[:6]}"
    busybox(agent.lxc_path, name)
    container = wait_for(
        lambda: Container.objects.filter(host=host, name=name).exclude(config_text="").first(),
        20,
        what="the container in the inventory",
    )
    agent.stop()
    Host.objects.filter(pk=host.pk).update(last_heartbeat=None)

    # The admin queues a start from the container page: it waits, and locks the container.
    login(page, base_url, "cancel-admin")
    url = f"{base_url}/containers/{container.pk}/"
    page.goto(url)
    start = page.locator("#container-state").get_by_role("button", name="Start", exact=True)
    start.click()
    card = page.locator("#action-result section.operation[data-status=pending]")
    card.wait_for(timeout=10000)
    op = Operation.objects.get(pk=int(card.get_attribute("id").removeprefix("operation-")))
    assert (op.kind, op.status, op.host_id) == ("container.start", "pending", host.pk)
    assert "No agent for host" in card.inner_text()
    assert "{#" not in page.inner_text("main")
    wait_for(lambda: start.is_disabled(), 10, what="the Start button to be disabled by the pending start")

    assert _cancel_buttons_seen(browser, base_url, "cancel-operator", op) == 1
    assert _cancel_buttons_seen(browser, base_url, "cancel-viewer", op) == 0

    page.goto(f"{base_url}/operations/{op.pk}/")
    card = page.locator(f"#operation-{op.pk}")
    button = _cancel_button(page)
    button.wait_for(timeout=10000)
    page.screenshot(path=str(SHOTS / "browser-operation-cancel.png"), full_page=True)
    assert "{#" not in page.inner_text("main")  # no template comment shown as text

    # Dismissing the confirm changes nothing.
    dialogs: list[str] = []

    def dismiss(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    button.click()
    wait_for(lambda: dialogs, 10, what="the confirm dialog")
    assert dialogs[0].startswith(f"Cancel operation #{op.pk} (container.start on "), dialogs[0]
    assert dialogs[0].endswith("It has not run yet: it will never run, and its target is freed at once.")
    page.wait_for_timeout(1500)
    op.refresh_from_db()
    assert op.status == "pending" and op.error == ""
    assert not AuditEvent.objects.filter(action="operation.cancel").exists()
    assert card.get_attribute("data-status") == "pending"
    assert button.count() == 1

    # Accepting it cancels the operation: the card says so, in place.
    page.once("dialog", lambda dialog: dialog.accept())
    button.click()
    page.locator(f"#operation-{op.pk}[data-status=cancelled]").wait_for(timeout=10000)
    text = card.inner_text()
    assert card.locator("[data-cancelled]").inner_text() == "Cancelled by cancel-admin before it ran."
    assert "Failed" not in text
    assert "No agent for host" not in text
    assert button.count() == 0
    op.refresh_from_db()
    assert op.status == "cancelled"
    assert op.error == "cancelled by cancel-admin before it ran"
    assert op.finished_at is not None
    rows = list(AuditEvent.objects.filter(action="operation.cancel"))
    assert len(rows) == 1
    row = rows[0]
    assert (row.actor_name, row.host_id, row.params) == ("cancel-admin", host.pk, {"operation": op.pk})
    page.reload()
    assert page.locator(f"#operation-{op.pk}").get_attribute("data-status") == "cancelled"
    assert _cancel_button(page).count() == 0

    # The container is free again: its Start button works while the agent is still away.
    page.goto(url)
    assert page.locator("#action-result section.operation").count() == 0
    assert start.is_enabled()

    # The agent returns; a new start runs, the cancelled one never did.
    start_agent(slug=agent.slug, lxc_path=agent.lxc_path)
    wait_for(lambda: Host.objects.get(pk=host.pk).agent_online, 30, what="the agent's heartbeat")
    page.goto(url)
    start.click()
    page.locator("#container-state dd.state", has_text="RUNNING").wait_for(timeout=60000)
    second = Operation.objects.filter(kind="container.start", host=host).exclude(pk=op.pk).get()
    wait_for(lambda: Operation.objects.get(pk=second.pk).is_terminal, 30, what="the new start to finish")
    second.refresh_from_db()
    assert second.status == "succeeded", second.error
    assert second.commands
    op.refresh_from_db()
    assert op.status == "cancelled"
    assert op.commands == []
    assert op.started_at is None and op.worker == ""
    assert op.error == "cancelled by cancel-admin before it ran"


def test_offline_agent_is_shown_on_operations_and_its_host(browser, page, live_server, make_user):
    make_user("offline-admin", role="admin", password=PASSWORD)
    make_user("offline-viewer", role="view", password=PASSWORD)
    last = timezone.now() - timedelta(minutes=10)
    host = Host.objects.create(
        slug="offhost",
        name="offline host",
        lxc_path="/var/lib/lxc",
        last_heartbeat=last,
        capabilities={"lxc": {"available": True, "version": "5.0.2", "templates": ["busybox"]}},
    )

    def operation(target: str, status: str, **fields) -> Operation:
        return Operation.objects.create(
            kind="container.start",
            host=host,
            target=f"container offhost/{target}",
            lock_key=f"container:offhost:{target}",
            status=status,
            **fields,
        )

    # As a dead agent leaves it: running, with the last progress it reported.
    running = operation("web1", "running", started_at=last, progress=40, worker="agent-offhost")
    waiting = [operation("web2", "pending"), operation("web3", "pending")]
    ended = {"started_at": last, "finished_at": timezone.now()}
    recovered = operation("web4", "succeeded", result={"recovered_after_restart": True}, **ended)
    plain = operation("web5", "succeeded", **ended)

    login(page, live_server.url, "offline-admin")
    page.goto(f"{live_server.url}/operations/{running.pk}/")
    alert = page.locator(f"#operation-{running.pk} [data-agent-offline]")
    since = timezone.localtime(last).strftime("%H:%M:%S")
    assert alert.inner_text().startswith(
        f"Agent offline since {since}: the outcome will be checked when it returns"
    ), alert.inner_text()
    assert _cancel_button(page).count() == 0  # running on an offline agent: nothing could end it

    page.goto(f"{live_server.url}/hosts/offhost/")
    notice = page.locator("[data-waiting]")
    text = " ".join(notice.inner_text().split())
    assert "2 operations wait for this host's agent" in text, text
    assert "1 operation was running when the agent went offline: its outcome is checked" in text, text
    assert "or you can cancel them from their pages." in text, text
    context = browser.new_context()
    viewer = context.new_page()
    login(viewer, live_server.url, "offline-viewer")
    viewer.goto(f"{live_server.url}/hosts/offhost/")
    seen = " ".join(viewer.locator("[data-waiting]").inner_text().split())
    assert "2 operations wait for this host's agent: they run when the agent starts." in seen, seen
    assert "cancel" not in seen, seen
    context.close()
    link = notice.get_by_role("link", name="2 operations")
    assert link.get_attribute("href") == "/operations/?host=offhost&status=pending"
    link.click()
    page.wait_for_url("**/operations/?host=offhost&status=pending")
    listed = page.eval_on_selector_all(
        "main table a[href^='/operations/']", "els => els.map(e => e.getAttribute('href'))"
    )
    assert sorted(listed) == sorted(f"/operations/{op.pk}/" for op in waiting), listed

    Operation.objects.filter(pk=waiting[1].pk).update(status="cancelled", finished_at=timezone.now())
    page.goto(f"{live_server.url}/hosts/offhost/")
    text = " ".join(page.locator("[data-waiting]").inner_text().split())
    assert "1 operation waits for this host's agent: it runs when the agent starts, or you can cancel it" in (
        text
    ), text

    page.goto(f"{live_server.url}/operations/{recovered.pk}/")
    restarted = (
        "The agent restarted while this operation ran: its outcome was checked on the host afterwards."
    )
    assert restarted in page.locator(f"#operation-{recovered.pk}").inner_text()
    page.goto(f"{live_server.url}/operations/{plain.pk}/")
    assert restarted not in page.locator(f"#operation-{plain.pk}").inner_text()

    # The agent is back: nothing says it is offline any more.
    Host.objects.filter(pk=host.pk).update(last_heartbeat=timezone.now())
    page.goto(f"{live_server.url}/operations/{running.pk}/")
    page.locator(f"#operation-{running.pk}").wait_for()
    assert page.locator("[data-agent-offline]").count() == 0
    assert _cancel_button(page).count() == 1  # its agent can end it now
    page.goto(f"{live_server.url}/hosts/offhost/")
    assert page.locator("[data-waiting]").count() == 0
    assert "1 pending, 1 running." in page.inner_text("main")
