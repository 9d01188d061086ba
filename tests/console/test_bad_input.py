"""Hostile and malformed input on every form and endpoint: a clear message, nothing queued.

No Operation row means no Celery task and so no host command; the refusal is audited.
"""

from __future__ import annotations

import os
import uuid

import pytest
from django.urls import reverse

from console.models import AuditEvent, Operation
from containers.models import Container

SHELLISH = [
    "a;reboot",
    "a|cat /etc/shadow",
    "a&&rm -rf /",
    "$(id)",
    "`id`",
    "a>b",
    "a<b",
    "a b",
    "a\nb",
    "a\rb",
    "a\tb",
    "-rf",
    "--help",
    ".hidden",
    "..",
    "../etc",
    "a/b",
    "/abs",
    "a\x00b",
    "café",
    "容器",
    "x" * 64,
    "",
    "a'b",
    'a"b',
    "a*",
    "a?",
    "a{b}",
    "a~",
    "a\\b",
    "#a",
    "a%00",
]
BAD_PATHS = [
    "../../etc/passwd",
    "/srv/../etc",
    "relative/path",
    "/x\x00y",
    "/a b",
    "",
    "/etc/shadow;id",
    "~root",
]
BAD_SIZES = ["0", "-1", "-5G", "1X", "abc", "5 G", "1e9", "99999999999999999999", "", "0x10"]
BAD_CPUS = ["7", "0-7", "2", "a", "-1", "0,,1", "1-0", "0-", ""]
BAD_INTS = ["-1", "abc", "1.5", "", "99999999999", "1e3", "0x10"]


@pytest.fixture
def setup(client, admin, host):
    client.force_login(admin)
    c = Container.objects.create(
        host=host,
        name="web1",
        lxc_path="/var/lib/lxc",
        state="RUNNING",
        pid=4242,
        usage={"memory_bytes": 64 * 1024 * 1024},
        config_text="lxc.rootfs.path = dir:/var/lib/lxc/web1/rootfs\nlxc.uts.name = web1\n",
    )
    stopped = Container.objects.create(
        host=host,
        name="db1",
        lxc_path="/var/lib/lxc",
        state="STOPPED",
        config_text="lxc.rootfs.path = dir:/var/lib/lxc/db1/rootfs\n",
    )
    host.capabilities = {**host.capabilities, "cpus": 2, "debootstrap": {"available": True}}
    host.mount_roots = ["/srv/shared"]
    host.save()
    return {"client": client, "running": c, "stopped": stopped, "host": host}


def assert_refused(response, *, audited: bool = True):
    assert 400 <= response.status_code < 500, response.status_code
    body = response.content.decode()
    assert "alert" in body or "field-error" in body or response.status_code in (404, 405)
    assert Operation.objects.count() == 0
    if audited:
        assert AuditEvent.objects.filter(result="refused").count() <= 1


CASES: list[tuple[str, str, dict]] = []
for bad in SHELLISH:
    CASES.append(("create-name", "create", {"name": bad, "template": "busybox"}))
    CASES.append(("copy-name", "copy", {"new_name": bad, "snapshot": "on"}))
for bad in ["../x", "/etc", "relative", "/var/lib/lxc/../../etc", "/x\x00", "/tmp/other-path"]:
    CASES.append(("create-lxcpath", "create", {"name": "ok1", "template": "busybox", "lxc_path": bad}))
for bad in ["bookworm;id", "../x", "", "Bookworm", "a" * 40, "$(id)"]:
    CASES.append(("create-release", "create", {"name": "ok2", "template": "debian", "release": bad or "x y"}))
for bad in BAD_PATHS + [
    "/var/lib/lxc-console/images/x.zip",
    "/var/lib/lxc-console/images/../../../etc/x.tar",
]:
    CASES.append(("create-tarball", "create", {"name": "ok3", "template": "tarball", "tarball": bad}))
for bad in ["fedora", "", "busybox;id", "../busybox", "download"]:
    CASES.append(("create-template", "create", {"name": "ok4", "template": bad}))
for bad in ["", "a\nb", "x" * 5000, 'unterminated "quote', "\x00"]:
    CASES.append(("attach", "attach", {"command": bad, "timeout": "10"}))
for bad in ["0", "601", "-1", "abc"]:
    CASES.append(("attach-timeout", "attach", {"command": "true", "timeout": bad}))
for bad in ["-1", "3601", "abc", "1.5"]:
    CASES.append(("stop-timeout", "stop", {"timeout": bad}))
CONFIG_BAD = {
    "lxc.start.auto": ["2", "yes", "-1", "1;reboot"],
    # A blank Settings field means "leave the key as it is / unset" (issue 11): not bad input.
    "lxc.start.delay": [v for v in BAD_INTS if v],
    "lxc.start.order": ["abc", "1.5", "99999", "x"],
    "lxc.group": ["a b", "a;b", "$(id)", "../x", "é"],
    "lxc.net.0.link": ["a b", "x" * 16, "br0;id", "$(id)"],
    "lxc.net.0.hwaddr": ["00:11:22", "zz:zz:zz:zz:zz:zz", "00-11-22-33-44-55", "a"],
    "lxc.tty.max": ["65", "-1", "a"],
    "lxc.signal.halt": ["SIGFOO", "kill -9", "$(id)"],
    "lxc.apparmor.profile": ["a b", "x;y", "$(id)"],
}
for key, values in CONFIG_BAD.items():
    for bad in values:
        CASES.append(("config-key", "config", {"mode": "keys", key: bad}))
for bad in [
    "no equals sign here",
    "lxc.rootfs.path = dir:/x\nnot.lxc.key = 1",
    "LXC.UPPER = 1\nlxc.rootfs.path = dir:/x",
    "lxc.uts.name = x",  # lost its rootfs line
    "lxc.rootfs.path = dir:/x\n\x00",
    "lxc.rootfs.path = dir:/x\n$(id) = 1",
]:
    CASES.append(("config-raw", "config", {"mode": "preview", "text": bad}))
LIMIT_BAD = {
    "memory.limit_in_bytes": BAD_SIZES + ["1M", "8M"],
    "memory.memsw.limit_in_bytes": BAD_SIZES,
    "cpuset.cpus": BAD_CPUS,
    "cpu.shares": ["1", "262145", "abc", "-5", ""],
    "blkio.weight": ["5", "1001", "x"],
    "pids.max": ["0", "-1", "many", ""],
    "devices.allow": ["a"],
    "memory.limit_in_bytes;id": ["1"],
    "../../etc/passwd": ["1"],
}
for key, values in LIMIT_BAD.items():
    for bad in values:
        CASES.append(("limit", "limits", {"key": key, "value": bad, "apply_live": "on", "persist": "on"}))
for bad in ["", "echo no shebang", "#!/bin/sh\n\x00", "x" * 70000]:
    CASES.append(("hook-script", "hooks", {"hook": "pre-start", "script": bad}))
for bad in ["pre_start", "prestart", "../pre-start", "", "post-stop;id"]:
    CASES.append(("hook-type", "hooks", {"hook": bad, "script": "#!/bin/sh\n"}))
for bad in BAD_PATHS + ["/etc", "/srv/sharedX", "/srv/shared/../../etc", "/"]:
    CASES.append(("mount-source", "mounts", {"source": bad, "target": "mnt/x", "read_only": "on"}))
for bad in ["/mnt/x", "mnt/../../etc", "mnt x", "", "mnt/$(id)", "..", "mnt/;id"]:
    CASES.append(("mount-target", "mounts", {"source": "/srv/shared", "target": bad, "read_only": "on"}))

# Group names: LXC splits groups on blanks and we allow letters, digits, ".", "_" and "-".
for bad in [
    "a;reboot",
    "a|b",
    "$(id)",
    "`id`",
    "a b",
    "a\nb",
    "a\tb",
    "a/b",
    "/abs",
    "a\x00b",
    "café",
    "容器",
    "x" * 64,
    "a'b",
    'a"b',
    "a*",
    "a,b",
    "#a",
    "a%00",
    "a>b",
]:
    CASES.append(("autostart-group", "autostart", {"group": bad}))
for bad in ["/", "relative", "/a b", "/x\x00", "../etc", "~", "/srv/$(id)", "/srv;id"]:
    CASES.append(("mount-roots", "mount-roots", {"roots": bad}))
for bad in ["web2", "", "WEB1", "web1 x", "web1;"]:
    CASES.append(("destroy-confirm", "destroy", {"confirm": bad}))
for bad in ["nohost", "../x", "", "testhost;id", "TESTHOST"]:
    CASES.append(("create-host", "create-host", {"host": bad, "name": "ok5", "template": "busybox"}))
for bad in ["../x", "/etc", "relative", "/var/lib/lxc/../../etc", "/x\x00", "/tmp/elsewhere"]:
    CASES.append(("copy-lxcpath", "copy", {"new_name": "ok6", "snapshot": "on", "lxc_path": bad}))
for bad in ["db1", "web1"]:
    CASES.append(("copy-existing", "copy", {"new_name": bad, "snapshot": "on"}))
for bad in ["/etc/\x00", "/" + "a" * 5000]:
    CASES.append(("files-path", "files", {"path": bad}))
    CASES.append(("files-download", "files", {"path": bad, "download": "1"}))
    CASES.append(("files-entry", "files", {"file": bad}))
CASES.append(("files-download-root", "files", {"path": "/", "download": "1"}))
for key in ("memory.limit_in_bytes", "cpu.shares", "pids.max", "cpuset.cpus"):
    for bad in ["1\n2", "$(id)", "`id`", "1;2", "x" * 300]:
        CASES.append(
            ("limit-injection", "limits", {"key": key, "value": bad, "apply_live": "on", "persist": "on"})
        )
for key in ("lxc.start.delay", "lxc.group", "lxc.net.0.link", "lxc.signal.halt"):
    for bad in ["1\nlxc.hook.pre-start = /tmp/x", "1\rx", "1\x0bx", "1\u2028x", "1\x85x"]:
        CASES.append(("config-injection", "config", {"mode": "keys", key: bad}))
CASES.append(("config-unknown-key", "config", {"mode": "keys", "lxc.hook.pre-start": "/tmp/x"}))

# Digits of other scripts: str.isdigit(), int() and \d take them; LXC and the kernel do not
# ("lxc.signal.halt = ٥٥" made the config unloadable, "cpuset.cpus = ٠" failed the next start).
NON_ASCII_DIGITS = ["\u0665\u0665", "\u0660", "\uff11", "\u0967", "1\u0665", "-\u0665"]
for key in ("lxc.start.delay", "lxc.start.order", "lxc.tty.max", "lxc.signal.halt"):
    for bad in NON_ASCII_DIGITS:
        CASES.append(("config-digits", "config", {"mode": "keys", key: bad}))
for bad in NON_ASCII_DIGITS:
    CASES.append(
        (
            "config-raw-digits",
            "config",
            {"mode": "preview", "text": f"lxc.rootfs.path = dir:/x\nlxc.signal.halt = {bad}"},
        )
    )
    CASES.append(
        (
            "config-raw-cpus",
            "config",
            {"mode": "preview", "text": f"lxc.rootfs.path = dir:/x\nlxc.cgroup.cpuset.cpus = {bad}"},
        )
    )
    CASES.append(("attach-timeout-digits", "attach", {"command": "true", "timeout": bad}))
    CASES.append(("stop-timeout-digits", "stop", {"timeout": bad}))
for key in ("memory.limit_in_bytes", "cpu.shares", "pids.max", "cpuset.cpus", "blkio.weight"):
    for bad in NON_ASCII_DIGITS + ["\u0665\u0661\u0662M"]:
        CASES.append(
            ("limit-digits", "limits", {"key": key, "value": bad, "apply_live": "on", "persist": "on"})
        )
# A trailing newline: "$" in a regex matches before it, so every check must match the whole value.
for bad in ["/srv/shared/data\n", "/srv/shared\n", "/srv/shared/data\r\n"]:
    CASES.append(("mount-source-newline", "mounts", {"source": bad, "target": "mnt/x", "read_only": "on"}))
for bad in ["mnt/x\n", "mnt\n", "mnt/x\r\n"]:
    CASES.append(
        ("mount-target-newline", "mounts", {"source": "/srv/shared", "target": bad, "read_only": "on"})
    )
# Interface names the kernel or a tool would misread; AppArmor profiles that are paths.
for bad in ["..", ".", "-n", "-", "--help", "a/b", "br0:1", "lxcbr0\n"]:
    CASES.append(("config-link", "config", {"mode": "keys", "lxc.net.0.link": bad}))
for bad in ["../etc", "..", "/etc/apparmor.d/x", "a..b", "-x", "unconfined\n"]:
    CASES.append(("config-apparmor", "config", {"mode": "keys", "lxc.apparmor.profile": bad}))
CASES.append(("limits-nothing", "limits", {"key": "cpu.shares", "value": "512"}))
CASES.append(
    ("limits-live-on-stopped", "limits-stopped", {"key": "cpu.shares", "value": "512", "apply_live": "on"})
)
CASES.append(("attach-stopped", "attach-stopped", {"command": "true", "timeout": "10"}))
CASES.append(("freeze-stopped", "freeze-stopped", {}))
CASES.append(("start-running", "start-running", {}))
CASES.append(("unknown-action", "unknown-action", {}))


def post(setup, endpoint: str, data: dict):
    client, c, stopped = setup["client"], setup["running"], setup["stopped"]
    urls = {
        "create": reverse("containers:create"),
        "copy": reverse("containers:action", args=[stopped.pk, "copy"]),
        "attach": reverse("containers:action", args=[c.pk, "attach"]),
        "stop": reverse("containers:action", args=[c.pk, "stop"]),
        "config": reverse("containers:config", args=[c.pk]),
        "limits": reverse("containers:limits", args=[c.pk]),
        "hooks": reverse("containers:hooks", args=[c.pk]),
        "mounts": reverse("containers:mounts", args=[c.pk]),
        "autostart": reverse("containers:autostart", args=[setup["host"].slug]),
        "mount-roots": reverse("containers:mount-roots", args=[setup["host"].slug]),
        "destroy": reverse("containers:destroy", args=[stopped.pk]),
        "create-host": reverse("containers:create"),
        "limits-stopped": reverse("containers:limits", args=[stopped.pk]),
        "attach-stopped": reverse("containers:action", args=[stopped.pk, "attach"]),
        "freeze-stopped": reverse("containers:action", args=[stopped.pk, "freeze"]),
        "start-running": reverse("containers:action", args=[c.pk, "start"]),
        "unknown-action": reverse("containers:action", args=[c.pk, "reboot-now"]),
    }
    urls["files"] = reverse("containers:files", args=[c.pk])
    if endpoint == "create":
        data = {"host": setup["host"].slug, **data}
    return client.post(urls[endpoint], data, HTTP_HX_REQUEST="true")


@pytest.mark.parametrize(
    ("kind", "endpoint", "data"), CASES, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(CASES)]
)
def test_bad_input_is_refused_with_a_message_and_queues_nothing(setup, kind, endpoint, data):
    response = post(setup, endpoint, data)
    assert_refused(response)


def test_there_are_at_least_300_cases():
    assert len(CASES) >= 300


def test_good_input_on_the_same_endpoints_is_accepted(setup):
    """The cases above fail for their bad value, not because the endpoint refuses everything."""
    good = [
        ("create", {"name": "good1", "template": "busybox"}, 302),
        ("copy", {"new_name": "db1-snap", "snapshot": "on"}, 202),
        ("limits", {"key": "cpu.shares", "value": "512", "apply_live": "on", "persist": "on"}, 302),
        ("mounts", {"source": "/srv/shared/data", "target": "mnt/data", "read_only": "on"}, 302),
        ("autostart", {"group": "web"}, 302),
        ("config", {"mode": "keys", "lxc.start.delay": "5"}, 302),
        ("attach", {"command": "echo a;reboot", "timeout": "10"}, 202),
        ("files", {"path": "/etc/x&download=1"}, 303),
        ("files", {"file": "/etc/hosts"}, 303),
    ]
    for endpoint, data, status in good:
        response = post(setup, endpoint, data)
        assert response.status_code == status, (endpoint, response.content[:300])
        Operation.objects.update(status="succeeded")  # release the container's lock for the next one
    assert Operation.objects.count() == len(good)


# --- Users pages (superusers) and the one-time password link (anyone holding it) ----------------
USER_NAMES_BAD = [
    *[b for b in SHELLISH if b != "x" * 64],  # 64 x's is a fine user name
    "x" * 151,
    "bob\n",
    " bob",
    "bob ",
    "ａｄｍｉｎ",  # fullwidth letters
    "admin\u200b",
    "٣٣٣",  # Arabic-Indic digits: str.isdigit() says yes
    "SUE-SUPERUSER",  # differs from an existing name only by case
    "-bob",
    "@bob",
]
EMAILS_BAD = [
    "not-an-address",
    "a@b",
    "a b@example.org",
    "a@example.org\n",
    " a@example.org",
    "é@example.org",
    "a@例え.jp",
    "a\x00@example.org",
    "x" * 250 + "@e.org",
    "<script>@example.org",
    "a@example.org;id",
]
PASSWORDS_BAD = ["", "short", "1" * 14, "٣" * 14, "a\x00" * 8, "x" * 1025 + "Aa1!", "password12345"]
CONFIRMS_BAD = ["", "M-TARGET", "m-target\x00", "m-target\n", "x" * 151, "m-target;id", "ｍ-target"]
USER_CASES: list[tuple[str, str, dict]] = []
for bad in USER_NAMES_BAD:
    USER_CASES.append(("user-name", "user-create", {"username": bad, "how": "invite"}))
for bad in EMAILS_BAD:
    USER_CASES.append(("user-email", "user-create", {"username": "okuser", "email": bad, "how": "invite"}))
for bad in PASSWORDS_BAD:
    USER_CASES.append(
        (
            "user-password",
            "user-create",
            {"username": "okuser", "how": "password", "password1": bad, "password2": bad},
        )
    )
USER_CASES.append(  # too like the user name
    (
        "user-password",
        "user-create",
        {
            "username": "okuser-long",
            "how": "password",
            "password1": "okuser-long1",
            "password2": "okuser-long1",
        },
    )
)
for bad in ["root", "", "invite\x00", "INVITE"]:
    USER_CASES.append(("user-how", "user-create", {"username": "okuser", "how": bad}))
for bad in ["nope", "../ops", "ops\x00", "OPS", "ops\n"]:
    USER_CASES.append(("user-team", "user-create", {"username": "okuser", "how": "invite", "teams": bad}))
for endpoint in ("user-deactivate", "user-reset-password", "user-remove-2fa"):
    for bad in CONFIRMS_BAD:
        USER_CASES.append(("user-confirm", endpoint, {"confirm": bad}))
for bad in [*PASSWORDS_BAD, "m-invited-12"]:  # the last one is too like the user name
    USER_CASES.append(("link-password", "link", {"new_password1": bad, "new_password2": bad}))
USER_CASES.append(("link-differ", "link", {"new_password1": "a long passphrase 1", "new_password2": "other"}))
for bad in ["x" * 43, "%00", "a" * 44, "٣" * 43, "..", "a%0Ab"]:
    USER_CASES.append(("link-token", "bad-link", {"token": bad, "new_password1": "a long passphrase 1"}))
for query in [
    {"page": "٣"},
    {"page": "３"},
    {"page": "1\n"},
    {"page": "-1"},
    {"page": "0x10"},
    {"page": "9" * 30},
    {"page": "0"},
]:
    USER_CASES.append(("user-list-page", "user-list", query))
for query in [{"q": "a\x00b"}, {"q": "x" * 151}, {"q": "a\nb"}, {"status": "root"}, {"status": "active\n"}]:
    USER_CASES.append(("user-list-filter", "user-list", query))
for pk in ["٣", "３", "1%0A", "-1", "99999999"]:
    USER_CASES.append(("user-pk", "user-pk", {"pk": pk}))


@pytest.fixture
def user_setup(client, superuser):
    from django.contrib.auth import get_user_model
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from console import user_services
    from console.models import Team
    from console.operations import SYSTEM

    client.force_login(superuser)
    Team.objects.create(name="ops")
    target = get_user_model().objects.create_user("m-target", password="a-long-test-password")
    TOTPDevice.objects.create(user=target, name="authenticator app", confirmed=True)
    _, invitation = user_services.create_user(actor=None, ctx=SYSTEM, username="m-invited")
    return {"client": client, "target": target, "token": invitation.token}


def user_world() -> list:
    """Everything a user-management request could change."""
    from django.contrib.auth import get_user_model
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from console.models import PasswordLink

    users = list(
        get_user_model().objects.order_by("pk").values_list("username", "email", "is_active", "password")
    )
    links = list(PasswordLink.objects.order_by("pk").values_list("pk", "used_at", "revoked_at"))
    return [users, links, TOTPDevice.objects.count()]


@pytest.mark.parametrize(
    ("kind", "endpoint", "data"), USER_CASES, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(USER_CASES)]
)
def test_bad_input_on_the_users_pages_is_refused_and_changes_nothing(user_setup, kind, endpoint, data):
    client, target = user_setup["client"], user_setup["target"]
    before = user_world()
    rows_before = AuditEvent.objects.count()
    if endpoint == "user-list":
        response = client.get(reverse("user-list"), data)
    elif endpoint == "user-pk":
        response = client.get(f"/users/{data['pk']}/")
    elif endpoint == "link":
        response = client.post(reverse("user-set-password", args=[user_setup["token"]]), data)
    elif endpoint == "bad-link":
        response = client.post(
            f"/password/{data.pop('token')}/", {**data, "new_password2": data["new_password1"]}
        )
    elif endpoint == "user-create":
        response = client.post(reverse("user-create"), data)
    else:
        response = client.post(reverse(endpoint, args=[target.pk]), data)
    assert 400 <= response.status_code < 500, response.status_code
    if response.status_code not in (404, 405) or endpoint == "bad-link":
        body = response.content.decode()
        assert "field-error" in body or 'class="alert error"' in body, body[:3000]
    assert user_world() == before
    if response.request["REQUEST_METHOD"] == "POST":
        # Exactly one refused row per refused change; a bad filter or page (a GET) writes none.
        assert list(
            AuditEvent.objects.values_list("result", flat=True)[: AuditEvent.objects.count() - rows_before]
        ) == ["refused"]
    else:
        assert AuditEvent.objects.count() == rows_before


def test_there_are_enough_user_cases():
    assert len(USER_CASES) >= 100


def test_good_input_on_the_users_pages_is_accepted(user_setup):
    """The cases above fail for their bad value, not because the pages refuse everything."""
    client, target = user_setup["client"], user_setup["target"]
    good = [
        (
            reverse("user-create"),
            {"username": "okuser", "email": "ok@example.org", "how": "invite", "teams": "ops"},
            200,
        ),
        (
            reverse("user-create"),
            {
                "username": "x" * 150,
                "how": "password",
                "password1": "a long passphrase 1",
                "password2": "a long passphrase 1",
            },
            302,
        ),
        (reverse("user-remove-2fa", args=[target.pk]), {"confirm": "m-target"}, 302),
        (reverse("user-reset-password", args=[target.pk]), {"confirm": "m-target"}, 200),
        (reverse("user-deactivate", args=[target.pk]), {"confirm": "m-target"}, 302),
        (
            reverse("user-set-password", args=[user_setup["token"]]),
            {"new_password1": "a long passphrase 1", "new_password2": "a long passphrase 1"},
            302,
        ),
    ]
    for url, data, status in good:
        response = client.post(url, data)
        assert response.status_code == status, (url, response.content[:300])
    assert (
        client.get(reverse("user-list"), {"q": "okuser", "status": "active", "page": "1"}).status_code == 200
    )
    assert AuditEvent.objects.filter(result="refused").count() == 0


# A NUL character gets one message, from the request layer, on SQLite and PostgreSQL alike
# (`make test` runs this file on both): before, PostgreSQL answered HTTP 500 for these cases because
# the refusal's audit row could not store "\u0000" in jsonb.
NUL_CASES = [case for case in CASES if any("\x00" in k + v for k, v in case[2].items())]


def test_the_nul_cases_cover_every_kind_of_field_that_had_them():
    kinds = {kind for kind, _, _ in NUL_CASES}
    assert {"create-name", "copy-name", "attach", "autostart-group", "mount-roots", "files-path"} <= kinds
    assert {"mount-source", "create-lxcpath", "copy-lxcpath", "config-raw", "hook-script"} <= kinds
    assert len(NUL_CASES) >= 10


@pytest.mark.parametrize(
    ("kind", "endpoint", "data"), NUL_CASES, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(NUL_CASES)]
)
def test_a_nul_character_gets_the_same_clear_message_on_every_database(setup, kind, endpoint, data):
    import html

    from console.input_guard import nul_message

    response = post(setup, endpoint, data)
    assert response.status_code == 400
    field = next(k for k, v in data.items() if "\x00" in v)
    message = nul_message(f"the field {field!r}")
    assert message in html.unescape(response.content.decode())
    # Refused before the view: nothing queued; a POST leaves its one refused row, NUL shown as U+2400.
    assert Operation.objects.count() == 0
    row = AuditEvent.objects.get()
    assert (row.result, row.message) == ("refused", message)
    assert row.action != "request.refused", "recorded under the view's own action"
    if field not in ("text", "script"):  # bulky bodies are never copied into the trail
        assert row.params[field] == data[field].replace("\x00", "\u2400")


# ---------------------------------------------------------------- host paths made canonical (issue 12.6)
# Each case below was accepted before paths were made canonical and resolved: "//" and
# "/proc/self/root" prefixes, kernel filesystems, control characters inside or at the end,
# non-ASCII digits, and (on the agent) symbolic links.
BAD_HOST_DIRS = [
    "//etc",
    "//",
    "/proc/self/root",
    "/proc/self/root/etc",
    "/dev/sda",
    "/dev/shm/pool",
    "/sys/kernel/pool",
    "/tmp/\nx",
    "/tmp/a\tb",
    "/tmp/a\u2028b",
    "/tmp/a\u200bb",
]
PATH_CASES: list[tuple[str, str, dict]] = []
CANONICAL_CASES: list[tuple[str, str, dict]] = []
for bad in BAD_HOST_DIRS:
    PATH_CASES.append(("pool-dir", "pool-create", {"kind": "dir", "name": "p1", "path": bad}))
for bad in ["٥٠٠M", "٥G", "１G", "5\u0660M"]:
    PATH_CASES.append(("loop-size", "loop-create", {"name": "f1", "size": bad}))
for bad in ["/dev/sdb", "/proc/1/root", "/sys/x"]:
    # A path a host already lists (a pool made before the fix) is still no LXC path.
    PATH_CASES.append(("lxc-conf-path", "lxc-conf", {"key": "lxc.lxcpath", "value": bad}))
for bad in ["0", "١G", "1G", "٥١٢M"]:
    # The default LXC path is no LVM pool: a size there used to be dropped without a word.
    PATH_CASES.append(("create-fssize", "create", {"name": "ok7", "template": "busybox", "fssize": bad}))


def _path_post(setup, endpoint: str, data: dict):
    client, host = setup["client"], setup["host"]
    urls = {
        "pool-create": reverse("storage:pool-create"),
        "loop-create": reverse("storage:loop-create"),
        "lxc-conf": reverse("containers:lxc-conf", args=[host.slug]),
        "create": reverse("containers:create"),
    }
    if endpoint != "lxc-conf":
        data = {"host": host.slug, **data}
    return client.post(urls[endpoint], data, HTTP_HX_REQUEST="true")


@pytest.fixture
def path_setup(setup):
    from storage.models import HostStorage

    host = setup["host"]
    host.extra_lxc_paths = ["/dev/sdb", "/proc/1/root", "/sys/x"]
    host.save()
    HostStorage.objects.create(
        host=host, image_dir="/var/lib/lxc-console/storage", image_dir_free_bytes=1 << 40
    )
    return setup


for bad in ["/dev/sda", "/proc/self/root"]:
    CANONICAL_CASES.append(
        ("create-bad-declared-path", "create", {"name": "ok8", "template": "busybox", "lxc_path": bad})
    )
    CANONICAL_CASES.append(
        ("copy-bad-declared-path", "copy", {"new_name": "ok9", "snapshot": "on", "lxc_path": bad})
    )
for bad in ["/srv/shared/x\n", "/srv/shared/x/\n"]:
    CANONICAL_CASES.append(
        ("mount-source-newline", "mounts", {"source": bad, "target": "mnt/x", "read_only": "on"})
    )
for bad in ["//proc", "/proc/self/root", "/dev", "/sys/fs", "/proc/self/root/srv"]:
    CANONICAL_CASES.append(("mount-roots-kernel", "mount-roots", {"roots": bad}))
for bad in ["/var/lib/lxc-console/images/a\u2028b.tar", "/var/lib/lxc-console/images/a\tb.tar"]:
    CANONICAL_CASES.append(
        ("create-tarball-control", "create", {"name": "ok3", "template": "tarball", "tarball": bad})
    )


@pytest.fixture
def declared_bad_paths(setup):
    host = setup["host"]
    host.extra_lxc_paths = ["/dev/sda", "/proc/self/root"]
    host.save()
    return setup


@pytest.mark.parametrize(
    ("kind", "endpoint", "data"),
    CANONICAL_CASES,
    ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(CANONICAL_CASES)],
)
def test_canonical_path_cases_are_refused(declared_bad_paths, kind, endpoint, data):
    assert_refused(post(declared_bad_paths, endpoint, data))


@pytest.mark.parametrize(
    ("kind", "endpoint", "data"), PATH_CASES, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(PATH_CASES)]
)
def test_bad_host_paths_and_numbers_are_refused(path_setup, kind, endpoint, data):
    assert_refused(_path_post(path_setup, endpoint, data))


def test_canonical_paths_are_accepted_in_their_canonical_form(path_setup, admin):
    """``//srv/p1/`` is ``/srv/p1``: made canonical, not refused; the operation carries that form."""
    response = _path_post(path_setup, "pool-create", {"kind": "dir", "name": "p2", "path": "//srv//p1/./"})
    assert response.status_code in (200, 202, 302), response.content[:300]
    assert Operation.objects.get().params["lxc_path"] == "/srv/p1"


def test_trailing_newlines_are_refused_by_the_services(admin, host):
    """Forms strip a final newline; the services (the only way in for scripts) must refuse it."""
    from console.errors import InvalidInput
    from console.operations import RequestContext
    from containers import services as containers
    from storage import services as storage

    ctx = RequestContext(ip="127.0.0.1", request_id="paths")
    host.mount_roots = ["/srv/shared"]
    host.save()
    with pytest.raises(InvalidInput, match="control characters"):
        storage.create_pool(actor=admin, ctx=ctx, host=host, name="p3", kind="dir", path="/srv/p3\n")
    with pytest.raises(InvalidInput, match="control characters"):
        containers.create_container(actor=admin, ctx=ctx, host=host, name="c1", lxc_path="/var/lib/lxc\n")
    with pytest.raises(InvalidInput, match="absolute path without blanks"):
        containers.set_mount_roots(actor=admin, ctx=ctx, host=host, roots=["/srv/shared\n"])
    with pytest.raises(InvalidInput):
        storage.create_loop_device(actor=admin, ctx=ctx, host=host, name="f2", size="500M\n")
    assert Operation.objects.count() == 0


# ---------------------------------------------------------------- the agent resolves symbolic links


def _agent_op(host, kind: str, params: dict) -> Operation:
    return Operation.objects.create(
        host=host, kind=kind, target="t", lock_key=f"t:{uuid.uuid4().hex}", params=params
    )


@pytest.fixture
def links(tmp_path):
    """``tmp_path/etc`` -> /etc, ``tmp_path/shm`` -> /dev/shm, ``tmp_path/root`` -> /, as a user
    with a shell on the host (or a pool's earlier contents) could plant them."""
    for name, target in (("etc", "/etc"), ("shm", "/dev/shm"), ("root", "/"), ("proc", "/proc/self/root")):
        (tmp_path / name).symlink_to(target)
    return tmp_path


@pytest.mark.parametrize(
    ("link", "message"),
    [("etc", "system directory"), ("shm/lxc-console-test-pool", "kernel's own"), ("root", "host's root")],
)
def test_the_agent_refuses_a_dir_pool_behind_a_symlink(host, links, link, message):
    from console.errors import ServiceError
    from console.runner import Runner
    from storage.handlers import pool_create
    from storage.models import Pool

    op = _agent_op(host, "storage.pool.create", {"name": "p4", "kind": "dir", "lxc_path": str(links / link)})
    try:
        with pytest.raises(ServiceError, match=message):
            pool_create(op, Runner(op))
        assert not Pool.objects.exists() and not os.path.exists("/dev/shm/lxc-console-test-pool")
    finally:
        if os.path.isdir("/dev/shm/lxc-console-test-pool"):
            os.rmdir("/dev/shm/lxc-console-test-pool")


def test_the_agent_refuses_symlinked_lxc_paths_tarballs_and_mount_sources(host, links, settings):
    from console.errors import ServiceError
    from console.runner import Runner
    from containers import handlers as tasks

    images = links / "images"
    images.mkdir()
    (images / "passwd.tar").symlink_to("/etc/passwd")
    settings.ROOTFS_TARBALL_DIRS = [str(images)]
    shared = links / "shared"
    shared.mkdir()
    (shared / "esc").symlink_to("/proc/self/root")
    cases = [
        ("container.create", tasks.create,
         {"name": "c2", "template": "busybox", "lxc_path": str(links / "shm")}),
        ("container.copy", tasks.copy,
         {"name": "c2", "lxc_path": "/var/lib/lxc", "new_name": "c3", "new_lxc_path": str(links / "proc"),
          "snapshot": False}),
        ("container.create", tasks.create,
         {"name": "c4", "template": "tarball", "lxc_path": str(links),
          "tarball": str(images / "passwd.tar")}),
        ("container.mount.add", tasks.mount_add,
         {"name": "c2", "lxc_path": "/var/lib/lxc", "source": str(shared / "esc"), "target": "mnt/x",
          "read_only": True, "create_target": True, "roots": [str(shared)]}),
        ("host.lxc_conf", tasks.lxc_system_config, {"key": "lxc.lxcpath", "value": str(links / "root")}),
    ]  # fmt: skip
    for kind, handler, params in cases:
        op = _agent_op(host, kind, params)
        with pytest.raises(ServiceError) as info:
            handler(op, Runner(op))
        assert "resolves to" in info.value.message, (kind, info.value.message)
    assert not os.path.exists("/dev/shm/c2")
