"""Every URL of the project, for anonymous, outsider, viewer, operator, admin and superuser users.

Each URL name must be classified in MATRIX: which role a GET and a POST need. A new URL fails
this test until it is classified. Refused requests must not create an Operation (so no host
command can follow).
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from console.models import AuditEvent, Operation, RoleBinding, Team
from containers.models import FileBlob

# Minimum for GET / POST: "any" (no login), "login" (any logged-in user; lists are filtered),
# "view", "operate", "admin" (role on the object's host), "super" (superuser), "actor" (only the
# user who made the object), None (method not allowed: 405 for everyone).
MATRIX: dict[str, tuple[str | None, str | None]] = {
    "home": ("login", None),
    "login": ("any", "any"),
    "logout": (None, "any"),
    "host-list": ("login", "super"),  # its POST adds a host
    "host-agent": ("admin", "admin"),
    "agent-enrol": (None, "any"),  # the agent's token exchange: the token is the proof
    "host-detail": ("view", None),
    "host-monitor": ("view", None),
    "host-update": (None, "super"),
    "operation-list": ("login", None),
    "operation-detail": ("view", None),
    "operation-card": ("view", None),
    "operation-cancel": (None, "operate"),
    "audit-list": ("login", None),
    "events": ("login", None),  # the stream relays only events of hosts the user may view
    "team-list": ("super", "super"),
    "team-detail": ("super", "super"),
    "user-list": ("super", None),
    "user-create": ("super", "super"),
    "user-detail": ("super", None),
    "user-deactivate": ("super", "super"),
    "user-reactivate": (None, "super"),
    "user-reset-password": ("super", "super"),
    "user-remove-2fa": ("super", "super"),
    "user-set-password": ("any", "any"),  # the one-time link: whoever holds it
    "containers:list": ("login", None),
    "containers:create": ("login", "admin"),
    "containers:autostart": ("view", "operate"),
    "containers:mount-roots": (None, "admin"),
    "containers:detail": ("view", None),
    "containers:destroy": ("view", "admin"),
    "containers:config": ("view", "admin"),
    "containers:limits": ("view", "admin"),
    "containers:hooks": ("view", "admin"),
    "containers:mounts": ("view", "admin"),
    "containers:files": ("operate", "operate"),
    "containers:terminal": ("operate", None),
    "containers:terminal-ticket": (None, "operate"),
    "containers:files-result": ("actor", None),
    "containers:file-blob": ("actor", None),
    "containers:action": (None, "operate"),
    "storage:index": ("login", None),
    "storage:loop-create": ("login", "admin"),
    "storage:loop-detach": ("view", "admin"),
    "storage:loop-mkfs": ("view", "admin"),
    "storage:pool-create": ("login", "admin"),
    "storage:pool-detail": ("view", None),
    "storage:pool-destroy": ("view", "admin"),
    "account": ("login", None),
    "account-password": ("login", "login"),
    "account-totp-start": (None, "login"),
    "account-totp-confirm": (None, "login"),
    "account-totp-remove": (None, "login"),
    "networks:index": ("login", None),
    "networks:create": ("login", "admin"),
    "networks:detail": ("view", None),
    "networks:action": (None, "admin"),
    "networks:reservation": (None, "admin"),
    "containers:libvirt-xml": ("view", "admin"),
    "containers:lxc-conf": (None, "admin"),
    "containers:libvirt-create": ("login", "admin"),
    "containers:libvirt-action": (None, "operate"),
    "containers:convert": ("view", "admin"),
}
ROLE_RANK = {"view": 1, "operate": 2, "admin": 3}
USERS = ["anonymous", "outsider", "viewer", "operator", "admin", "superuser"]


def all_url_names() -> set[str]:
    names: set[str] = set()

    def walk(patterns, prefix: str = "") -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + (f"{p.namespace}:" if p.namespace else ""))
            elif isinstance(p, URLPattern) and p.name:
                names.add(prefix + p.name)

    walk(get_resolver().url_patterns)
    return names


def test_every_url_is_classified():
    names = all_url_names()
    assert names - set(MATRIX) == set(), "classify these URLs in MATRIX"
    assert set(MATRIX) - names == set(), "these MATRIX entries no longer exist"


@pytest.fixture
def world(db, host, make_user, admin, make_container):
    container = make_container(
        "web1", state="RUNNING", pid=4242, config_text="lxc.rootfs.path = dir:/var/lib/lxc/web1/rootfs\n"
    )
    op = Operation.objects.create(
        kind="container.files.read",
        host=host,
        target=container.target,
        actor=admin,
        lock_key=f"{container.lock_key}:read:x",
        status="succeeded",
        params={"path": "/etc/hosts"},
    )
    FileBlob.objects.create(operation=op, path="/etc/hosts", size=3, sha256="0" * 64, content=b"abc")
    team = Team.objects.create(name="ops")
    AuditEvent.objects.create(action="x", result="succeeded", host=host)
    from storage.models import LoopDevice, Pool

    loop = LoopDevice.objects.create(
        host=host, device="/dev/loop7", backing_file="/var/lib/lxc-console/storage/a.img"
    )
    pool = Pool.objects.create(host=host, name="p1", kind="dir", lxc_path="/srv/p1")
    from networks.models import Network

    network = Network.objects.create(host=host, name="net1", bridge="virbr9")
    from console import user_services
    from console.operations import SYSTEM

    person = get_user_model().objects.create_user("m-target", password="a-long-test-password")
    _, invitation = user_services.create_user(actor=None, ctx=SYSTEM, username="m-invited")
    return {
        "person": person,
        "link_token": invitation.token,
        "host": host,
        "container": container,
        "op": op,
        "team": team,
        "loop": loop,
        "pool": pool,
        "network": network,
    }


def kwargs_for(name: str, w: dict) -> dict:
    c, h = w["container"], w["host"]
    return {
        "host-detail": {"slug": h.slug},
        "host-monitor": {"slug": h.slug},
        "host-update": {"slug": h.slug},
        "host-agent": {"slug": h.slug},
        "operation-detail": {"pk": w["op"].pk},
        "operation-card": {"pk": w["op"].pk},
        "operation-cancel": {"pk": w["op"].pk},
        "team-detail": {"pk": w["team"].pk},
        "user-detail": {"pk": w["person"].pk},
        "user-deactivate": {"pk": w["person"].pk},
        "user-reactivate": {"pk": w["person"].pk},
        "user-reset-password": {"pk": w["person"].pk},
        "user-remove-2fa": {"pk": w["person"].pk},
        "user-set-password": {"token": w["link_token"]},
        "containers:autostart": {"slug": h.slug},
        "containers:mount-roots": {"slug": h.slug},
        "containers:detail": {"pk": c.pk},
        "containers:destroy": {"pk": c.pk},
        "containers:config": {"pk": c.pk},
        "containers:limits": {"pk": c.pk},
        "containers:hooks": {"pk": c.pk},
        "containers:mounts": {"pk": c.pk},
        "containers:files": {"pk": c.pk},
        "containers:terminal": {"pk": c.pk},
        "containers:terminal-ticket": {"pk": c.pk},
        "containers:files-result": {"pk": c.pk, "op_pk": w["op"].pk},
        "containers:file-blob": {"pk": c.pk, "op_pk": w["op"].pk},
        "containers:action": {"pk": c.pk, "action": "start"},
        "storage:loop-detach": {"pk": w["loop"].pk},
        "storage:loop-mkfs": {"pk": w["loop"].pk},
        "storage:pool-detail": {"pk": w["pool"].pk},
        "storage:pool-destroy": {"pk": w["pool"].pk},
        "networks:detail": {"pk": w["network"].pk},
        "networks:action": {"pk": w["network"].pk, "action": "start"},
        "networks:reservation": {"pk": w["network"].pk, "change": "remove"},
        "containers:libvirt-action": {"pk": c.pk, "action": "start"},
        "containers:convert": {"pk": c.pk},
        "containers:libvirt-xml": {"pk": c.pk},
        "containers:lxc-conf": {"slug": w["host"].slug},
    }.get(name, {})


def make_users(make_user, admin):
    return {
        "anonymous": None,
        "outsider": make_user("m-outsider", role=None),
        "viewer": make_user("m-viewer", role="view"),
        "operator": make_user("m-operator", role="operate"),
        "admin": admin,  # the actor of the file-read operation
        "superuser": make_user("m-super", role=None, superuser=True),
    }


def expected(need: str | None, who: str, has_object: bool) -> str:
    """'ok', 'login', 'forbidden', 'hidden' (404) or 'not-allowed' (405)."""
    if need is None:
        return "not-allowed"
    if need == "any":
        return "ok"
    if who == "anonymous":
        return "login"
    if need == "actor":  # personal reads (a file fetched for download): nobody else, not even a superuser
        return "ok" if who == "admin" else "hidden"
    if who == "superuser":
        return "ok"
    if need == "login":
        return "ok"
    if need == "super":  # objects on hosts the user cannot see stay hidden even here
        return "hidden" if who == "outsider" and has_object else "forbidden"
    rank = {"outsider": 0, "viewer": 1, "operator": 2, "admin": 3}[who]
    if rank == 0:
        return "hidden" if has_object else "forbidden"
    return "ok" if rank >= ROLE_RANK[need] else "forbidden"


def check(response, outcome: str, label: str) -> None:
    code = response.status_code
    if outcome == "login":
        assert code == 302 and "/login/" in response["Location"], label
    elif outcome == "hidden":
        assert code == 404, label
    elif outcome == "forbidden":
        assert code == 403, label
    elif outcome == "not-allowed":
        assert code == 405, label
    else:
        assert code not in (401, 403, 404, 405), label
        if code == 302:
            assert "/login/" not in response["Location"], label


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_permission_matrix(name, client, world, make_user, admin):
    users = make_users(make_user, admin)
    url = reverse(name, kwargs=kwargs_for(name, world))
    get_need, post_need = MATRIX[name]
    # Users and teams are not on a host: an outsider is refused (403), not kept from seeing them.
    has_object = (
        bool(kwargs_for(name, world)) and name not in ("team-detail",) and not name.startswith("user-")
    )
    for who in USERS:
        client.logout()
        if users[who] is not None:
            client.force_login(users[who])
        for method, need in (("get", get_need), ("post", post_need)):
            if name == "logout" or (name == "login" and method == "post"):
                continue  # logging out/in changes the session under test; covered elsewhere
            ops_before = Operation.objects.count()
            response = getattr(client, method)(url)
            outcome = expected(need, who, has_object)
            check(
                response,
                outcome,
                f"{method.upper()} {url} as {who}: {response.status_code}, expected {outcome}",
            )
            if outcome != "ok":
                assert Operation.objects.count() == ops_before, (
                    f"{method} {url} as {who} created an operation"
                )


@pytest.mark.parametrize("who", ["admin", "superuser"])
def test_no_get_queues_anything(client, world, make_user, admin, who):
    """A GET must never start an operation: another site can send the browser to any URL
    (issue 12.11: a redirect to the file browser queued a read in the victim's name)."""
    user = make_users(make_user, admin)[who]
    client.force_login(user)
    ops = Operation.objects.count()
    for name, (get_need, _) in sorted(MATRIX.items()):
        if get_need is None or name in ("logout", "login"):
            continue
        url = reverse(name, kwargs=kwargs_for(name, world))
        for query in ({}, {"path": "/etc", "download": "1", "file": "/etc/hosts"}):
            client.get(url, query)
            assert Operation.objects.count() == ops, f"GET {url} {query} as {who} queued an operation"


def test_objects_on_other_hosts_are_invisible(client, world, make_user):
    from console.models import Host

    other = Host.objects.create(slug="other", name="other")
    user = make_user("scoped-admin", role="admin", hosts=[other])
    client.force_login(user)
    c = world["container"]
    assert client.get(reverse("containers:detail", args=[c.pk])).status_code == 404
    assert client.post(reverse("containers:action", args=[c.pk, "start"])).status_code == 404
    assert "web1" not in client.get(reverse("containers:list")).content.decode()
    assert client.get(reverse("host-detail", args=["testhost"])).status_code == 404
    listing = client.get(reverse("host-list")).content.decode()
    assert "other" in listing and "testhost" not in listing
    assert Operation.objects.filter(kind="container.start").count() == 0


def test_role_bindings_on_chosen_hosts(db, make_user, host):
    from console import access
    from console.models import Host

    other = Host.objects.create(slug="other", name="other")
    user = make_user("mixed", role="view")
    team = Team.objects.create(name="admins-of-other")
    team.members.add(user)
    RoleBinding.objects.create(team=team, role="admin", all_hosts=False).hosts.set([other])
    access.forget(user)
    assert access.role_on(user, host) == "view"
    assert access.role_on(user, other) == "admin"
    assert not access.can(user, "operate", host)
    assert access.can(user, "admin", other)
