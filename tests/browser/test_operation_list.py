"""The Operations list in the browser: its live filters (untouched, one change, a value that
matches nothing, which stays typed), and cancelling a pending operation from its row."""

from __future__ import annotations

import pytest

from console.models import AuditEvent, Operation
from tests.browser.helpers import PASSWORD, SHOTS, login
from tests.hosttools import wait_for

pytestmark = [pytest.mark.host, pytest.mark.browser]


def body_rows(page) -> int:
    return page.locator("#operation-rows tbody tr").count()


def test_filters_and_cancel_from_the_list(page, live_server, make_user, host):
    operator = make_user("list-operator", role="operate", password=PASSWORD)
    for i in range(3):
        Operation.objects.create(
            kind="container.start",
            host=host,
            actor=operator,
            target=f"container c{i}",
            lock_key=f"s{i}",
            status="succeeded",
        )
    stop = Operation.objects.create(
        kind="container.stop", host=host, actor=operator, target="container c9", lock_key="x"
    )
    kept = Operation.objects.create(
        kind="container.freeze", host=host, actor=None, target="container c8", lock_key="y"
    )

    login(page, live_server.url, "list-operator")
    page.goto(f"{live_server.url}/operations/")
    assert body_rows(page) == 5  # untouched: everything
    page.wait_for_timeout(3500)  # a poll of the rows (every 3 s) keeps them
    assert body_rows(page) == 5

    page.select_option("select[name=kind]", "container.stop")  # one change, applied live
    wait_for(lambda: body_rows(page) == 1, 10, what="the kind filter")
    assert "kind=container.stop" in page.url
    assert f"#{stop.pk}" in page.inner_text("#operation-rows")

    page.locator("input[name=by]").press_sequentially("nobody-at-all")  # matches nothing; it stays
    wait_for(
        lambda: "No operations match these filters" in page.inner_text("#operation-rows"), 10, what="empty"
    )
    assert page.input_value("input[name=by]") == "nobody-at-all"
    assert page.input_value("select[name=kind]") == "container.stop"

    page.goto(f"{live_server.url}/operations/?status=pending")
    assert body_rows(page) == 2
    # Dismissing the confirm changes nothing.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator("#operation-rows tr", has_text=f"#{kept.pk}").get_by_role("button", name="Cancel").click()
    page.wait_for_timeout(500)
    assert Operation.objects.get(pk=kept.pk).status == "pending"

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#operation-rows tr", has_text=f"#{stop.pk}").get_by_role("button", name="Cancel").click()
    page.locator("#operation-list-message").get_by_text(
        f"Operation #{stop.pk} cancelled; its target is free."
    ).wait_for(timeout=10000)
    # The rows refresh at once: the cancelled one leaves the "pending" list.
    wait_for(lambda: body_rows(page) == 1, 10, what="the rows to refresh")
    page.screenshot(path=str(SHOTS / "browser-operation-list.png"), full_page=True)
    assert Operation.objects.get(pk=stop.pk).status == "cancelled"
    assert Operation.objects.get(pk=kept.pk).status == "pending"
    assert (
        AuditEvent.objects.filter(action="operation.cancel", result="succeeded", actor=operator).count() == 1
    )
