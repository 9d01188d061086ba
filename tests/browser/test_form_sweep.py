"""Every form of the console with fields a user types into, submitted in the browser three ways
(issue 11): untouched, with one field changed to a good value, and with one wrong value. A wrong
value is refused with a message that names the problem, nothing is queued, and every value typed
is still in its field; an untouched form queues nothing it was not asked for; a good change is
accepted. One world for the module (tests/browser/world.py): a stopped and a running busybox
container, a loop device, a dir pool, a network with DHCP and a stopped domain, made through the
services at the start.

Forms without typed fields (the action buttons: start, stop, undefine, ...) are submitted by the
chapter walk (test_chapter_walk.py); the container Settings form has its own test
(test_container_settings_form.py). The two-factor forms, the raw config editor's save and the
domain attach form (selects only) have tests of their own at the end. Swept elsewhere: adding a
host (test_host_enrolment.py), the user page's confirmations and the set-password link page
(test_users.py). The LXC system defaults form writes this machine's /etc/lxc/lxc.conf: only
refused values here (tests/host/test_lxc_system_config.py writes it and puts it back).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from console.models import Operation, Team
from console.operations import RequestContext
from containers import services as containers
from containers.choices import Backend
from containers.libvirt import services as domains
from containers.models import Container
from networks import services as networks
from networks.models import Network
from storage import services as storage
from storage.models import LoopDevice, Pool
from tests.browser.helpers import PASSWORD, login
from tests.browser.world import login_as
from tests.host.helpers import succeeded
from tests.hosttools import wait_for

pytestmark = [pytest.mark.host, pytest.mark.browser]
CTX = RequestContext(ip="127.0.0.1", request_id="form-sweep")


def ok(op: Operation, timeout: float = 120) -> Operation:
    return succeeded(op, timeout)


@pytest.fixture(scope="module")
def things(world):
    """What the forms act on, made through the services."""
    admin, host = world.users["admin"], world.host
    made: dict[str, object] = {}
    for key in ("stopped", "running"):
        op = ok(containers.create_container(actor=admin, ctx=CTX, host=host, name=world.name(key)))
        made[key] = Container.objects.get(pk=op.result["container_id"])
    ok(containers.start_container(actor=admin, ctx=CTX, container=made["running"]))
    op = ok(storage.create_loop_device(actor=admin, ctx=CTX, host=host, name=world.name("disk"), size="16M"))
    made["loop"] = wait_for(
        lambda: LoopDevice.objects.filter(device=op.result["device"]).first(), 30, what="the loop device row"
    )
    ok(storage.create_pool(actor=admin, ctx=CTX, host=host, name=world.name("dirpool"), kind="dir"))
    made["pool"] = Pool.objects.get(name=world.name("dirpool"))
    third = int(world.prefix[1:3], 16)
    ok(
        networks.define_network(
            actor=admin,
            ctx=CTX,
            host=host,
            name=world.name("net"),
            bridge=f"bs{world.prefix}",
            forward_mode="none",
            address=f"10.214.{third}.1",
            netmask="255.255.255.0",
            dhcp_start=f"10.214.{third}.100",
            dhcp_end=f"10.214.{third}.200",
        )
    )
    made["network"] = Network.objects.get(name=world.name("net"))
    made["subnet"] = f"10.214.{third}"
    stopped = made["stopped"]
    ok(
        domains.define_domain(
            actor=admin,
            ctx=CTX,
            host=host,
            name=world.name("dom"),
            memory_mib=64,
            vcpus=1,
            init="/bin/sh",
            rootfs=f"{stopped.lxc_path}/{stopped.name}/rootfs",
            bridge="lxcbr0",
        )
    )
    made["domain"] = Container.objects.get(backend=Backend.LIBVIRT, name=world.name("dom"))
    made["team"] = Team.objects.get(name=f"{world.prefix}-viewers")
    return made


@pytest.fixture(scope="module")
def admin_page(world, browser, things):
    page = login_as(world, browser, "admin")
    page.on("dialog", lambda dialog: dialog.accept())
    return page


@dataclass
class Case:
    id: str
    url: Callable[[Any, dict], str]  # (world, things) -> path
    form: str  # the form, as a selector
    typed: dict[str, str]  # what the user types (or picks), wrong value included
    says: str  # the refusal says this
    untouched: str | None = None  # what an untouched submit says; "browser": the browser stops it
    good: dict[str, str] = field(default_factory=dict)  # one good change ...
    accepted: str = "operation"  # ... leads to an operation's page, or this text is shown
    before: str | None = None  # clicked first (a folded section)
    on_host: bool = False  # only the agent can tell: the refusal is the operation's failure


def _c(key: str, tail: str = "") -> Callable[[object, dict], str]:
    return lambda w, t: f"/containers/{t[key].pk}/{tail}"


CASES = [
    Case(
        "container-create",
        lambda w, t: "/containers/new/",
        "main form[method=post]",
        {"name": "no spaces allowed", "release": "bookworm"},
        "name",
        untouched="This field is required",
    ),
    Case(
        "copy",
        _c("stopped"),
        "#container-forms form",
        {"new_name": "-starts-with-a-dash"},
        "must not start with '-'",
        untouched="browser",
    ),
    Case(
        "attach-command",
        _c("running"),
        "#container-forms form",
        {"command": 'echo "no closing quote', "timeout": "30"},
        "quot",
        untouched="browser",
        good={"command": "true"},
        accepted="exited with status 0",
    ),
    Case(
        "destroy",
        _c("stopped", "destroy/"),
        "main form[method=post]",
        {"confirm": "not-its-name"},
        "name",
        untouched="browser",
    ),
    Case(
        "limits",
        _c("stopped", "limits/"),
        "main form[method=post]",
        {"key": "memory.limit_in_bytes", "value": "lots"},
        "memory.limit_in_bytes",
        untouched="single-line value is required",
        good={"key": "pids.max", "value": "200"},
    ),
    Case(
        "hook",
        _c("stopped", "hooks/?hook=post-stop"),
        "main form[method=post]",
        {"script": "echo a script without its interpreter line"},
        "#!",
        good={"script": "#!/bin/sh\necho post-stop ran\n"},
    ),
    Case(
        "mount",
        _c("stopped", "mounts/"),
        "form:has(input[name=source])",
        {"source": "/nonexistent/dir", "target": "mnt/data"},
        "allowed roots",
        untouched="source",
    ),
    Case(
        "mount-roots",
        lambda w, t: f"/hosts/{w.host.slug}/",
        "form:has(textarea[name=roots])",
        {"roots": "/nonexistent/root-dir"},
        "/nonexistent/root-dir",
        on_host=True,
    ),
    Case(
        "lxc-conf",  # /etc/lxc/lxc.conf of this machine: only refused values, nothing written
        lambda w, t: f"/hosts/{w.host.slug}/",
        "form:has(select[name=key])",
        {"key": "lxc.bdev.lvm.vg", "value": "no spaces allowed"},
        "is not a volume group",
        untouched="browser",
    ),
    Case(
        "config-raw",
        _c("stopped", "config/"),
        "form:has(textarea[name=text])",
        {"text": "lxc.uts.name = sweep\nthis line has no key"},
        "expected 'lxc.key = value'",
        untouched="No change",
    ),
    Case(
        "host-edit",
        lambda w, t: f"/hosts/{w.host.slug}/",
        "form:has(input[name=libvirt_uri])",
        {"name": "", "address": "10.0.0.9"},
        "name",
        before="summary:has-text('Edit the host')",
    ),
    Case(
        "loop-create",
        lambda w, t: "/storage/loop/new/",
        "main form[method=post]",
        {"name": "sweep-disk", "size": "lots"},
        "size",
        untouched="This field is required",
    ),
    Case(
        "loop-detach",
        lambda w, t: f"/storage/loop/{t['loop'].pk}/detach/",
        "main form[method=post]",
        {"confirm": "/dev/loop999"},
        "/dev/loop",
        untouched="browser",
    ),
    Case(
        "pool-create",
        lambda w, t: "/storage/pools/new/",
        "main form[method=post]",
        {"name": "no spaces allowed", "kind": "dir"},
        "name",
        untouched="This field is required",
    ),
    Case(
        "pool-destroy",
        lambda w, t: f"/storage/pools/{t['pool'].pk}/destroy/",
        "main form[method=post]",
        {"confirm": "not-its-name"},
        "name",
        untouched="browser",
    ),
    Case(
        "network-create",
        lambda w, t: "/networks/new/",
        "main form[method=post]",
        {"name": "sweepnet", "bridge": "swbr0", "address": "300.1.2.3", "dhcp_start": "10.9.9.10"},
        "must be an IPv4 address",
        untouched="This field is required",
    ),
    Case(
        "reservation",
        lambda w, t: f"/networks/{t['network'].pk}/",
        "form:has(input[name=mac])",
        {"mac": "52:54:00:12:34:56", "ip": "8.8.8.8", "host_name": "sweep"},
        "8.8.8.8",
        untouched="browser",
    ),
    Case(
        "domain-create",
        lambda w, t: "/containers/libvirt/new/",
        "form:has(input[name=mode][value=form])",
        {"name": "sweepdom", "memory_mib": "lots", "rootfs": "/srv/nowhere"},
        "memory",
        untouched="This field is required",
    ),
    Case(
        "domain-from-xml",
        lambda w, t: "/containers/libvirt/new/",
        "form:has(input[name=mode][value=xml])",
        {"xml": "<domain type='lxc'><name>sweep"},
        "XML",
        untouched="This field is required",
    ),
    Case(
        "domain-xml-edit",
        _c("domain", "domain-xml/"),
        "main form[method=post]",
        {"text": "<domain"},
        "XML",
    ),
    Case(
        "convert",
        _c("stopped", "convert/"),
        "main form[method=post]",
        {"new_name": "no spaces allowed"},
        "name",
    ),
    Case(
        "files-path",
        _c("running", "files/"),
        "form.filters",
        {"path": "/no/such/directory"},
        "no such",
        on_host=True,
    ),
    Case(
        "loop-mkfs",
        lambda w, t: f"/storage/loop/{t['loop'].pk}/mkfs/",
        "main form[method=post]",
        {"confirm": "/dev/loop999"},
        "/dev/loop",
        untouched="browser",
    ),
    Case(
        "team-add-member",
        lambda w, t: f"/teams/{t['team'].pk}/",
        "form:has(input[name=do][value=add-member])",
        {"username": "nobody-of-that-name"},
        "nobody-of-that-name",
        untouched="browser",
    ),
    Case(
        "team-create",
        lambda w, t: "/teams/",
        "form.inline-form",
        {"name": ""},
        "name",
        untouched="name",
        good={"name": "sweep-team"},
        accepted="sweep-team",
    ),
    Case(
        "user-create",
        lambda w, t: "/users/new/",
        "main form[method=post]",
        {"username": "has a space", "email": "someone@example.org"},
        "letters, digits",
        untouched="browser",
    ),
    Case(
        "password-change",
        lambda w, t: "/account/password/",
        "main form[method=post]",
        {
            "old_password": "not-my-password",
            "new_password1": "x-new-long-pass-9",
            "new_password2": "x-new-long-pass-9",
        },
        "old password",
        untouched="browser",
    ),
]


def _open(page, world, things, case: Case) -> None:
    page.goto(world.base + case.url(world, things))
    if case.before:
        page.locator(case.before).click()


def _fill(form, typed: dict[str, str]) -> None:
    for name, value in typed.items():
        box = form.locator(f"[name='{name}']:not([type=hidden])").first
        if box.evaluate("e => e.tagName") == "SELECT":
            box.select_option(value)
        else:
            box.fill(value)


def _submit(page, form) -> None:
    form.locator("button[type=submit]:not([name=remove]):not(.danger), button[type=submit]").first.click()


def _shown(page, text: str, timeout: float = 10) -> None:
    try:
        wait_for(lambda: text.lower() in page.inner_text("main").lower(), timeout, what=repr(text))
    except AssertionError:
        raise AssertionError(f"{text!r} is not on {page.url}:\n{page.inner_text('main')[:1500]}") from None


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_wrong_value_is_refused_and_every_typed_value_stays(case, world, things, admin_page):
    page = admin_page
    _open(page, world, things, case)
    form = page.locator(case.form).first
    _fill(form, case.typed)
    before = Operation.objects.count()
    _submit(page, form)
    page.wait_for_load_state()
    if case.on_host:
        _shown(page, case.says, timeout=60)
    else:
        _shown(page, case.says)
        assert Operation.objects.count() == before, "a wrong value was queued"
    assert "/operations/" not in page.url
    form = page.locator(case.form).first
    for name, value in case.typed.items():
        if "password" in name:
            continue  # a password is never sent back to the page
        box = form.locator(f"[name='{name}']:not([type=hidden])").first
        assert box.input_value() == value, f"{name}: typed {value!r}, now {box.input_value()!r}"
    assert page.locator("header.topbar").count() == 1  # no page inside the page


@pytest.mark.parametrize("case", [c for c in CASES if c.untouched], ids=[c.id for c in CASES if c.untouched])
def test_untouched_form_queues_nothing_and_says_why(case, world, things, admin_page):
    page = admin_page
    _open(page, world, things, case)
    form = page.locator(case.form).first
    before = Operation.objects.count()
    url = page.url
    _submit(page, form)
    page.wait_for_load_state()
    if case.untouched == "browser":
        assert not form.evaluate("f => f.checkValidity()"), "the browser let an empty required field go"
        assert page.url == url
    else:
        _shown(page, case.untouched)
    assert Operation.objects.count() == before


@pytest.mark.parametrize("case", [c for c in CASES if c.good], ids=[c.id for c in CASES if c.good])
def test_one_good_change_is_accepted(case, world, things, admin_page):
    page = admin_page
    _open(page, world, things, case)
    form = page.locator(case.form).first
    _fill(form, case.good)
    _submit(page, form)
    if case.accepted == "operation":
        page.wait_for_url("**/operations/*/", timeout=30000)
        page.locator("section.operation[data-status='succeeded']").wait_for(timeout=60000)
    else:
        _shown(page, case.accepted, timeout=60)


def test_login_form_keeps_the_username_after_a_wrong_password(world, browser):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{world.base}/login/")
    page.fill("input[name=username]", world.username("viewer"))
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/login/" in page.url
    assert page.input_value("input[name=username]") == world.username("viewer")
    assert page.locator("[role=alert], .alert.error, .errorlist").count() >= 1
    login(page, world.base, world.username("viewer"), PASSWORD)
    context.close()


def test_raw_config_change_is_shown_then_saved(world, things, admin_page):
    page, stopped = admin_page, things["stopped"]
    page.goto(f"{world.base}/containers/{stopped.pk}/config/")
    box = page.locator("textarea[name=text]")
    box.fill(box.input_value().rstrip("\n") + "\nlxc.start.delay = 3\n")
    page.get_by_role("button", name="Show the changes").click()
    assert "+lxc.start.delay = 3" in page.inner_text("pre.diff")
    before = Operation.objects.count()
    page.get_by_role("button", name="Save this file").click()
    page.wait_for_url("**/operations/*/", timeout=30000)
    page.locator("section.operation[data-status='succeeded']").wait_for(timeout=60000)
    assert Operation.objects.count() == before + 1
    with open(f"{stopped.lxc_path}/{stopped.name}/config") as fh:
        assert "lxc.start.delay = 3" in fh.read().splitlines()


def test_two_factor_forms_keep_what_was_typed_and_say_why(world, browser, things):
    """Set up, a wrong code, the right one; then off: a wrong password, the right one. The
    operator's own account (the admin page of the other tests stays as it is)."""
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    page = login_as(world, browser, "operator")
    user = world.users["operator"]
    try:
        page.goto(f"{world.base}/account/")
        page.get_by_role("button", name="Set up two-factor authentication").click()
        confirm = page.locator("form:has(input[name=otp_token])")
        confirm.get_by_role("button", name="Turn two-factor on").click()
        assert not confirm.evaluate("f => f.checkValidity()"), "an empty code was sent"
        device = TOTPDevice.objects.get(user=user, confirmed=False)
        wrong = f"{(int(totp(device.bin_key)) + 1) % 1000000:06d}"
        page.fill("input[name=otp_token]", wrong)
        confirm.get_by_role("button", name="Turn two-factor on").click()
        _shown(page, "That code is not valid")
        assert page.input_value("input[name=otp_token]") == wrong
        assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        # The right code at once after a wrong one: refused while the device waits, and it says so.
        page.fill("input[name=otp_token]", f"{totp(device.bin_key):06d}")
        confirm.get_by_role("button", name="Turn two-factor on").click()
        _shown(page, "Too many wrong codes in a row: wait 1 s")
        time.sleep(1.2)
        page.fill("input[name=otp_token]", f"{totp(device.bin_key):06d}")
        confirm.get_by_role("button", name="Turn two-factor on").click()
        _shown(page, "Two-factor authentication is on")

        remove = page.locator("form:has(input[name=password])")
        remove.get_by_role("button", name="Turn two-factor off").click()
        assert not remove.evaluate("f => f.checkValidity()"), "an empty password was sent"
        page.fill("input[name=password]", "not-my-password")
        remove.get_by_role("button", name="Turn two-factor off").click()
        _shown(page, "That is not your password")
        assert TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        page.fill("input[name=password]", PASSWORD)
        remove.get_by_role("button", name="Turn two-factor off").click()
        _shown(page, "Two-factor authentication is off")
        assert not TOTPDevice.objects.filter(user=user).exists()
    finally:
        TOTPDevice.objects.filter(user=user).delete()
        page.context.close()


def test_attach_disk_untouched_and_a_target_taken_since_the_page_was_read(world, things, admin_page):
    """The attach form has selects only: untouched it offers a free device and the first free
    target; a target another attach took since the page was read (a stale page) is refused beside
    the form, which keeps both choices, and nothing is queued. Attaching itself is walked by
    test_domain_page.py. The untouched form is not sent: its first device may be any free block
    device of this machine, not one of the world's."""
    admin, dom, page = world.users["admin"], things["domain"], admin_page
    ok(domains.domain_action(actor=admin, ctx=CTX, container=dom, action="start"), 90)
    dom = wait_for(
        lambda: Container.objects.filter(pk=dom.pk, state="RUNNING").first(), 30, what="the domain running"
    )
    try:
        spare = ok(
            storage.create_loop_device(
                actor=admin, ctx=CTX, host=world.host, name=world.name("spare"), size="16M"
            )
        ).result["device"]
        taken = things["loop"].device
        ok(domains.attach_disk(actor=admin, ctx=CTX, container=dom, device=taken, target="vdb"))
        wait_for(
            lambda: "vdb" in Container.objects.get(pk=dom.pk).domain_xml, 30, what="vdb in the inventory"
        )
        page.goto(f"{world.base}/containers/{dom.pk}/")
        form = page.locator("#domain-attach form")
        wait_for(
            lambda: (
                spare in form.locator("select[name=device]").evaluate("s => [...s.options].map(o => o.value)")
            ),
            30,
            what=f"{spare} offered",
        )
        # Untouched: a free device (not the attached one) and the first free target.
        assert form.evaluate("f => f.checkValidity()")
        assert form.locator("select[name=device]").input_value() not in ("", taken)
        assert form.locator("select[name=target]").input_value() == "vdc"
        # As the form read before the attach offered it: vdb.
        form.locator("select[name=target]").evaluate("s => s.add(new Option('vdb', 'vdb'), 0)")
        form.locator("select[name=device]").select_option(spare)
        form.locator("select[name=target]").select_option("vdb")
        before = Operation.objects.count()
        form.get_by_role("button", name="Attach (live)").click()
        page.locator("#action-result", has_text="already has a disk at vdb").wait_for(timeout=10000)
        assert Operation.objects.count() == before
        assert form.locator("select[name=device]").input_value() == spare
        assert form.locator("select[name=target]").input_value() == "vdb"
        assert page.locator("header.topbar").count() == 1
    finally:
        dom.refresh_from_db()
        ok(domains.domain_action(actor=admin, ctx=CTX, container=dom, action="destroy"), 90)
