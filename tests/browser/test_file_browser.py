"""The file browser as a user clicks it: entries are POSTed (no read from a GET), odd directory
names are followed as they are, reads are kept out of the Operations list unless asked for."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from console.models import AuditEvent, Host, Operation
from console.operations import RequestContext
from containers import services
from containers.models import Container
from tests.host.helpers import wait_terminal

pytestmark = [pytest.mark.host, pytest.mark.browser]
CTX = RequestContext(ip="127.0.0.1", request_id="browser-files")
ODD = "x&download=1"


def login(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "browser-password-123")
    page.click("button[type=submit]")
    page.wait_for_load_state()


def listing_shows(page, path: str) -> None:
    page.locator("h1 code", has_text=path).wait_for(timeout=10000)
    page.locator("#files-result table.files").wait_for(timeout=30000)


def test_browse_a_running_container_by_clicking(page, live_server, make_user, local_agent):
    admin = make_user("browser-files", role="admin", password="browser-password-123")
    host = Host.objects.get(slug=local_agent.slug)
    op = wait_terminal(
        services.create_container(actor=admin, ctx=CTX, host=host, name=f"fb-{uuid.uuid4().hex[:6]}")
    )
    c = Container.objects.get(pk=op.result["container_id"])
    assert wait_terminal(services.start_container(actor=admin, ctx=CTX, container=c)).status == "succeeded"
    subprocess.run(
        ["lxc-attach", "-P", c.lxc_path, "-n", c.name, "--", "/bin/mkdir", "-p", f"/srv/{ODD}/sub"],
        check=True,
        timeout=30,
    )
    login(page, live_server, "browser-files")

    # A GET of a read URL (what another site can make the browser do) reads nothing.
    before = Operation.objects.count()
    page.goto(f"{live_server.url}/containers/{c.pk}/files/?path=/etc/passwd&download=1")
    assert "Choose List to read this directory" in page.inner_text("main")
    assert Operation.objects.count() == before

    # Untouched submit: the path form lists what it shows.
    page.goto(f"{live_server.url}/containers/{c.pk}/")
    page.click("button:has-text('Files')")
    listing_shows(page, "/")
    page.click("#files-result button.entry:text-is('srv/')")
    listing_shows(page, "/srv")
    page.click(f"#files-result button.entry:text-is('{ODD}/')")
    listing_shows(page, f"/srv/{ODD}")
    page.click("#files-result button.entry:text-is('sub/')")
    listing_shows(page, f"/srv/{ODD}/sub")
    assert "This directory is empty" in page.inner_text("#files-result")
    assert not Operation.objects.filter(kind="container.files.read").exists()

    # One change: another path typed, then a file's Download button.
    page.fill("input[name=path]", "/etc")
    page.click("form.filters button:text-is('List')")
    listing_shows(page, "/etc")
    page.locator("#files-result tr", has_text="passwd").locator("button:text-is('Download')").first.click()
    page.locator("#files-result a:has-text('Save the file')").wait_for(timeout=30000)
    read = Operation.objects.filter(kind="container.files.read").get()
    assert read.params["path"] == "/etc/passwd" and read.actor_id == admin.pk

    # A wrong value: a path that does not exist says so.
    page.fill("input[name=path]", "/no/such/dir")
    page.click("form.filters button:text-is('List')")
    page.locator("#files-result .alert.error", has_text="no such file").wait_for(timeout=30000)

    # A file's path typed in: it is offered as a file (not "not a directory"), one click fetches it.
    page.fill("input[name=path]", "/etc/passwd")
    page.click("form.filters button:text-is('List')")
    offer = page.locator("#files-result [data-is-file]")
    offer.wait_for(timeout=30000)
    assert "/etc/passwd is a file" in offer.inner_text()
    offer.get_by_role("button", name="Download it").click()
    page.locator("#files-result a:has-text('Save the file')").wait_for(timeout=30000)
    assert Operation.objects.filter(kind="container.files.read", params__path="/etc/passwd").count() == 2
    assert f"/proc/{Container.objects.get(pk=c.pk).pid}/root" in page.inner_text("main")

    # Reads are audited but the Operations list shows them only when asked for.
    assert AuditEvent.objects.filter(action="container.files.list", actor=admin).count() >= 5
    page.goto(f"{live_server.url}/operations/")
    rows = page.inner_text("#operation-rows")
    assert "container.start" in rows and "container.files" not in rows
    page.check("input[name=reads]")
    page.locator("#operation-rows", has_text="container.files.read").wait_for(timeout=10000)
    assert "reads=1" in page.url
