"""The container Settings form on a real busybox container, as a user clicks it (issue 11.1, 11.2).

Untouched submit saves nothing and says so; wrong values are all marked at once and every typed
value survives; ticking "Start at boot" and saving makes ``lxc-autostart --list`` name it.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from console.models import Host, Operation
from console.operations import RequestContext
from containers import services
from containers.models import Container
from tests.host.helpers import wait_terminal

pytestmark = [pytest.mark.host, pytest.mark.browser]
SHOTS = Path(__file__).resolve().parents[2] / "var" / "test-logs"
PASSWORD = "browser-password-123"


@pytest.fixture
def busybox(local_agent, make_user):
    admin = make_user("settings-admin", role="admin", password=PASSWORD)
    host = Host.objects.get(slug=local_agent.slug)
    op = services.create_container(
        actor=admin,
        ctx=RequestContext(ip="127.0.0.1", request_id="settings-browser"),
        host=host,
        name=f"cfg-{uuid.uuid4().hex[:6]}",
    )
    op = wait_terminal(op)
    assert op.status == "succeeded", op.error + op.log
    return Container.objects.get(pk=op.result["container_id"])


def login(page, url: str) -> None:
    page.goto(url)
    page.fill("input[name=username]", "settings-admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url)


def settings(page):
    return page.locator("form:has(input[name=mode][value=keys])")


def autostart_list(c: Container) -> list[str]:
    out = subprocess.run(
        ["lxc-autostart", "-P", c.lxc_path, "--list"], capture_output=True, text=True, check=True
    ).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def open_settings(page, live_server, c: Container):
    url = f"{live_server.url}/containers/{c.pk}/config/"
    login(page, url)
    return url, settings(page)


def test_untouched_settings_form_saves_nothing_and_says_so(page, live_server, busybox):
    c = busybox
    assert "lxc.net.0.hwaddr" not in c.config_text  # busybox configs have no MAC
    _url, form = open_settings(page, live_server, c)
    before = Operation.objects.count()
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert not page.locator(".alert.error").count()
    assert "Nothing to save" in page.inner_text("[role=status]")
    assert Operation.objects.count() == before
    # The start-order hint says what lxc-autostart does (order 5 starts before order 10).
    assert "lower starts first" in settings(page).inner_text()
    assert "higher starts first" not in page.content()
    page.screenshot(path=str(SHOTS / "browser-settings-untouched.png"), full_page=True)


def test_wrong_values_are_all_marked_and_every_typed_value_survives(page, live_server, busybox):
    _url, form = open_settings(page, live_server, busybox)
    before = Operation.objects.count()
    form.locator("input[name='lxc.start.delay']").fill("soon")
    form.locator("input[name='lxc.start.order']").fill("\u0665")  # an Arabic-Indic 5
    form.locator("input[name='lxc.net.0.link']").fill("..")
    form.locator("input[name='lxc.group']").fill("web,db")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    form = settings(page)
    marked = {e.get_attribute("data-key") for e in form.locator(".field-error").all()}
    assert marked == {"lxc.start.delay", "lxc.start.order", "lxc.net.0.link"}
    # Each refusal is said once, beside its field; the alert above only counts them.
    main = page.inner_text("main")
    for message in form.locator(".field-error").all_inner_texts():
        assert main.count(message.strip()) == 1, message
    assert "3 values refused: see the marked fields" in page.inner_text(".alert.error")
    assert form.locator("input[name='lxc.start.delay']").input_value() == "soon"
    assert form.locator("input[name='lxc.start.order']").input_value() == "\u0665"
    assert form.locator("input[name='lxc.net.0.link']").input_value() == ".."
    assert form.locator("input[name='lxc.group']").input_value() == "web,db"
    assert Operation.objects.count() == before
    page.screenshot(path=str(SHOTS / "browser-settings-refused.png"), full_page=True)


def test_tick_start_at_boot_and_save_makes_lxc_autostart_list_it(page, live_server, busybox):
    c = busybox
    url, form = open_settings(page, live_server, c)
    assert c.name not in autostart_list(c)
    form.locator("input[name='lxc.start.auto'][type=checkbox]").check()
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/operations/*/")
    page.locator("section.operation[data-status='succeeded']").wait_for(timeout=30000)
    assert c.name in autostart_list(c)
    c.refresh_from_db()
    assert c.autostart is True
    assert Operation.objects.latest("pk").params["changes"] == {"lxc.start.auto": "1"}
    # Back on the page the box is ticked, and the untouched form again saves nothing.
    page.goto(url)
    form = settings(page)
    assert form.locator("input[name='lxc.start.auto'][type=checkbox]").is_checked()
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "Nothing to save" in page.inner_text("[role=status]")
