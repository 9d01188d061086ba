"""The audit page as a user clicks it: the live filters, and exports that match what is shown.

Before, after filtering with the live form, "Export what is shown: CSV · JSON" still linked
`?format=csv` (32 rows shown, 158 exported). The Operations and Audit filters had placeholders
only, no labels.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from console.models import Host
from console.operations import RequestContext, audit
from tests.browser.helpers import SHOTS, login

pytestmark = pytest.mark.browser
CTX = RequestContext(ip="192.0.2.44", request_id="browser-audit")


def shown_targets(page) -> list[str]:
    """The targets of the rows the page shows (the Target column), read at one instant."""
    page.wait_for_load_state()
    return page.evaluate(
        """() => {
            const table = document.querySelector("#audit-rows table.list");
            if (!table) return [];
            const index = [...table.tHead.rows[0].cells].findIndex(c => c.textContent === "Target");
            return [...table.tBodies[0].rows].map(r => r.cells[index].textContent);
        }"""
    )


def export(page, fmt: str) -> list[str]:
    """Click the export link shown and read the downloaded file's targets."""
    with page.expect_download() as download:
        page.locator("#audit-rows .export-links a", has_text=fmt.upper()).click()
    text = Path(download.value.path()).read_text()
    if fmt == "json":
        return [e["target"] for e in json.loads(text)["events"]]
    return [r["target"] for r in csv.DictReader(io.StringIO(text))]


def wait_rows(page, predicate) -> list[str]:
    """The rows once the htmx swap that the last change triggered has landed."""
    for _ in range(100):
        targets = shown_targets(page)
        if predicate(targets):
            return targets
        page.wait_for_timeout(100)
    raise AssertionError(f"the rows did not change as expected: {targets}")


def test_exports_download_exactly_the_rows_shown_after_live_filtering(page, live_server, make_user):
    make_user("browser-sue", role=None, superuser=True, password="browser-password-123")
    alpha = Host.objects.create(slug="alpha", name="alpha")
    beta = Host.objects.create(slug="beta", name="beta")
    for i in range(12):
        audit(
            actor=None,
            ctx=CTX,
            action="container.start" if i % 3 else "container.destroy",
            result="refused" if i % 2 else "accepted",
            host=alpha if i < 8 else beta,
            target=f"container web{i}",
        )
    login(page, live_server.url, "browser-sue")
    page.goto(f"{live_server.url}/audit/")
    everything = shown_targets(page)
    assert {f"container web{i}" for i in range(12)} <= set(everything)

    # Every filter control has a label a screen reader announces (not a placeholder only).
    for name in ("q", "actor", "action", "result", "host", "since", "until"):
        control = page.locator(f"form.filters [name={name}]")
        assert control.evaluate("el => el.labels.length") == 1, name
    assert page.get_by_label("Result").evaluate("el => el.name") == "result"

    # Untouched submit (Enter, or the Filter button): everything is still shown.
    page.get_by_label("Search").press("Enter")
    page.wait_for_url(lambda url: "q=" in url)
    assert shown_targets(page) == everything
    page.click("form.filters button:has-text('Filter')")
    assert shown_targets(page) == everything
    assert export(page, "csv") == everything

    # One change, live (htmx): the rows and both export links follow it.
    page.get_by_label("Result").select_option("refused")
    refused = wait_rows(page, lambda t: t and len(t) < len(everything))
    assert set(refused) == {f"container web{i}" for i in range(12) if i % 2}
    assert export(page, "csv") == refused
    assert export(page, "json") == refused

    # Two filters at once.
    page.get_by_label("Host").select_option("beta")
    both = wait_rows(page, lambda t: len(t) < len(refused))
    assert both == ["container web11", "container web9"]
    assert export(page, "csv") == both and export(page, "json") == both
    page.screenshot(path=str(SHOTS / "browser-audit-filtered.png"), full_page=True)

    # A value that matches nothing: an empty list, and the exports are empty too.
    page.get_by_label("User").fill("nobody-at-all")
    page.get_by_label("User").press("Tab")  # a change event, as a user leaving the field
    wait_rows(page, lambda t: t == [])
    assert "match these filters" in page.inner_text("#audit-rows")
    assert export(page, "csv") == [] and export(page, "json") == []
    # The typed values survive a reload of the pushed URL.
    page.reload()
    assert page.get_by_label("User").input_value() == "nobody-at-all"
    assert page.get_by_label("Result").input_value() == "refused"

    # A wrong value where the browser cannot stop it (a hand-edited URL): a 400 that says why.
    response = page.goto(f"{live_server.url}/audit/?since=2026-02-30")
    assert response.status == 400
    assert "since: '2026-02-30' is not a date" in page.inner_text("main")


def test_operations_filters_have_labels(page, live_server, make_user):
    make_user("browser-vic", role="view", password="browser-password-123")
    login(page, live_server.url, "browser-vic")
    page.goto(f"{live_server.url}/operations/")
    for name in ("q", "status", "host"):
        assert page.locator(f"form.filters [name={name}]").evaluate("el => el.labels.length") == 1, name
    page.get_by_label("Status").select_option("failed")
    page.wait_for_url(lambda url: "status=failed" in url)
    assert "No operations match these filters" in page.inner_text("#operation-rows")
