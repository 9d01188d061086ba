"""No page runs a query per row or per host: every list page and every live panel (the partials a
page refreshes on a pushed event or its slow poll) runs the same number of queries on a small and
on a large inventory (``manage.py seed_demo`` at two sizes), for an admin of every host, a viewer
of some hosts and a superuser.

Every GET endpoint of the URL conf is classified in ENDPOINTS, so a new page fails this test until
it is: "list" and "live" entries are measured (with the requests listed), the others say why not.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from console.models import Operation, Team
from containers.choices import ContainerOp, DomainOp
from containers.models import Container, FileBlob
from networks.models import Network
from storage.models import Pool
from tests.console.test_permission_matrix import all_url_names

SMALL = {"hosts": 2, "containers": 6, "domains": 2, "operations": 40, "audit": 60}
# More rows than a page (PAGE_SIZE 50) on every list, more hosts than the viewer's three.
LARGE = {"hosts": 5, "containers": 150, "domains": 15, "operations": 160, "audit": 400}
EXTRA_USERS = {"small": 0, "large": 60}


USERS = ("demo-admin", "demo-viewer", "sue-superuser")
OPERATORS = ("demo-admin", "sue-superuser")  # the file browser needs the operator role
SUPERUSER = ("sue-superuser",)  # teams and users


@dataclass(frozen=True)
class Get:
    path: str  # formatted with the world's objects: {host} {container} {domain} {op} ...
    target: str = ""  # the HX-Target of an htmx refresh (empty: the whole page)
    users: tuple[str, ...] = USERS


# Every GET endpoint: "list" / "live" with the requests measured, or why it is not measured.
ENDPOINTS: dict[str, tuple[str, list[Get]] | str] = {
    "host-list": ("list", [Get("/hosts/")]),
    "operation-list": (
        "list",
        [
            Get("/operations/"),
            Get("/operations/", "operation-rows"),
            Get("/operations/?status=succeeded&page=2", "operation-rows"),
            Get("/operations/?host={host}", "operation-rows"),
            Get("/operations/?q=ct00&reads=1"),
            Get("/operations/?by=demo-user1"),
        ],
    ),
    "audit-list": (
        "list",
        [
            Get("/audit/"),
            Get("/audit/", "audit-rows"),
            Get("/audit/?page=3"),
            Get("/audit/?host={host}"),
            Get("/audit/?result=refused"),
            Get("/audit/?actor=demo-user2"),
            Get("/audit/?team=demo-operator+team"),
            Get("/audit/?format=csv"),
            Get("/audit/?format=json"),
        ],
    ),
    "containers:list": (
        "list",
        [
            Get("/containers/"),
            Get("/containers/", "container-rows"),
            Get("/containers/?page=2", "container-rows"),
            Get("/containers/?state=RUNNING&host={host}"),
            Get("/containers/?q=ct00"),
        ],
    ),
    "storage:index": ("list", [Get("/storage/")]),
    "networks:index": ("list", [Get("/networks/")]),
    "team-list": ("list", [Get("/teams/", users=SUPERUSER)]),
    "user-list": (
        "list",
        [Get("/users/", users=SUPERUSER), Get("/users/?status=active&page=2", "user-rows", SUPERUSER)],
    ),
    "events": ("live", [Get("/events/")]),
    "host-detail": ("live", [Get("/hosts/{host}/")]),
    "host-monitor": ("live", [Get("/hosts/{host}/monitor/")]),
    "operation-detail": ("live", [Get("/operations/{op}/")]),
    "operation-card": ("live", [Get("/operations/{op}/card/", "operation-{op}")]),
    "containers:detail": (
        "live",
        [
            Get("/containers/{container}/"),
            Get("/containers/{container}/", "container-state"),
            Get("/containers/{container}/", "container-ops"),
            Get("/containers/{container}/", "container-forms"),
            Get("/containers/{domain}/"),
            Get("/containers/{domain}/", "container-state"),
            Get("/containers/{domain}/", "container-ops"),
            Get("/containers/{domain}/", "domain-attach"),
        ],
    ),
    "containers:files": (
        "live",
        [Get("/containers/{container}/files/?op={files_op}&path=/", users=OPERATORS)],
    ),
    "containers:files-result": (
        "live",
        [Get("/containers/{container}/files/result/{files_op}/", "files-result", OPERATORS)],
    ),
    "containers:convert": ("live", [Get("/containers/{container}/convert/?op={convert_op}", "conversion")]),
    "storage:pool-detail": ("live", [Get("/storage/pools/{pool}/")]),
    "networks:detail": ("live", [Get("/networks/{network}/"), Get("/networks/{network}/", "network-state")]),
    "team-detail": ("live", [Get("/teams/{team}/", users=SUPERUSER)]),
    "user-detail": ("live", [Get("/users/{user}/", users=SUPERUSER)]),
    # Not lists and not refreshed: one object's form, or no page at all.
    "home": "a redirect to the container list",
    "login": "the login form (no objects)",
    "logout": "POST only",
    "account": "the user's own account (no objects)",
    "account-password": "a form of the user's own",
    "account-totp-start": "POST only",
    "account-totp-confirm": "POST only",
    "account-totp-remove": "POST only",
    "host-update": "POST only",
    "host-agent": "one host's agent page (its enrolment form)",
    "agent-enrol": "POST only (an agent's token exchange)",
    "operation-cancel": "POST only",
    "user-create": "a form",
    "user-deactivate": "a confirmation form of one user",
    "user-reactivate": "POST only",
    "user-reset-password": "a confirmation form of one user",
    "user-remove-2fa": "a confirmation form of one user",
    "user-set-password": "the one-time link's form (no login)",
    "containers:create": "a form (its host choices: one query)",
    "containers:autostart": "one host's form",
    "containers:mount-roots": "POST only",
    "containers:lxc-conf": "POST only",
    "containers:destroy": "one container's confirmation form",
    "containers:config": "one container's form",
    "containers:limits": "one container's form",
    "containers:hooks": "one container's form",
    "containers:mounts": "one container's form",
    "containers:terminal": "one container's terminal page (the websocket carries it)",
    "containers:terminal-ticket": "POST only",
    "containers:file-blob": "a download of one stored file",
    "containers:action": "POST only",
    "containers:libvirt-create": "a form",
    "containers:libvirt-xml": "one domain's form",
    "containers:libvirt-action": "POST only",
    "storage:loop-create": "a form",
    "storage:loop-detach": "one loop device's confirmation form",
    "storage:loop-mkfs": "one loop device's confirmation form",
    "storage:pool-create": "a form",
    "storage:pool-destroy": "one pool's confirmation form",
    "networks:create": "a form",
    "networks:action": "POST only",
    "networks:reservation": "POST only",
}


def test_every_get_endpoint_is_classified():
    names = all_url_names()
    assert names - set(ENDPOINTS) == set(), "classify these URLs in ENDPOINTS (list, live, or why not)"
    assert set(ENDPOINTS) - names == set(), "these ENDPOINTS entries no longer exist"


def _world(size: str) -> dict[str, int | str]:
    """Seed one size and name the objects the requests are about (the same names at each size)."""
    call_command("seed_demo", stdout=io.StringIO(), **(SMALL if size == "small" else LARGE))
    User = get_user_model()
    User.objects.create_user("sue-superuser", password=None, is_superuser=True)
    for i in range(EXTRA_USERS[size]):
        user = User.objects.create_user(f"extra{i}", password=None)
        Team.objects.get(name="demo-operator team").members.add(user)
        Team.objects.create(name=f"extra team {i}").members.add(user)
    container = Container.objects.get(host__slug="demo-01", name="ct0000")
    # The same state at both sizes: a running domain's page also offers the host's free devices.
    Container.objects.filter(host__slug="demo-01", name="dom000").update(state="RUNNING")
    world: dict[str, int | str] = {
        "host": "demo-01",
        "container": container.pk,
        "domain": Container.objects.get(host__slug="demo-01", name="dom000").pk,
        "op": Operation.objects.filter(host__slug="demo-01").order_by("pk").first().pk,  # type: ignore[union-attr]
        "pool": Pool.objects.get(host__slug="demo-01", name="fast").pk,
        "network": Network.objects.get(host__slug="demo-01", name="default").pk,
        "team": Team.objects.get(name="demo-operator team").pk,
        "user": User.objects.get(username="demo-user1").pk,
    }
    for username in USERS:
        user = User.objects.get(username=username)
        files = Operation.objects.create(
            kind=ContainerOp.FILES_READ,
            host=container.host,
            actor=user,
            target=container.target,
            lock_key=f"{container.lock_key}:read:{username}",
            status="succeeded",
            params={"path": "/etc/hostname"},
        )
        FileBlob.objects.create(
            operation=files, path="/etc/hostname", size=4, sha256="0" * 64, content=b"ct0\n"
        )
        convert = Operation.objects.create(
            kind=DomainOp.CONVERT,
            host=container.host,
            actor=user,
            target=container.target,
            lock_key=f"convert:{username}",
            status="running",
        )
        world[f"files_op:{username}"] = files.pk
        world[f"convert_op:{username}"] = convert.pk
    return world


def _counts(size: str) -> dict[tuple[str, str, str, str], int]:
    """Queries per (endpoint, request, target, user) on a world of ``size``, rolled back after."""
    counts = {}
    savepoint = transaction.savepoint()
    try:
        world = _world(size)
        for username in USERS:
            user = get_user_model().objects.get(username=username)
            client = Client()
            client.force_login(user)
            names = {k.split(":")[0]: v for k, v in world.items() if k.endswith(f":{username}")}
            values = {**{k: v for k, v in world.items() if ":" not in k}, **names}
            for name, entry in ENDPOINTS.items():
                if isinstance(entry, str):
                    continue
                for get in entry[1]:
                    if username not in get.users:
                        continue
                    path = get.path.format(**values)
                    target = get.target.format(**values)
                    headers: dict[str, Any] = (
                        {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": target} if target else {}
                    )
                    with CaptureQueriesContext(connection) as ctx:
                        response = client.get(path, **headers)
                        if hasattr(response, "streaming_content"):
                            b"".join(response.streaming_content)
                    assert response.status_code in (200, 204, 286), (username, path, response.status_code)
                    counts[(name, get.path, get.target, username)] = len(ctx.captured_queries)
    finally:
        transaction.savepoint_rollback(savepoint)
    return counts


@pytest.mark.django_db
def test_lists_and_live_panels_run_as_many_queries_on_a_large_inventory_as_on_a_small_one():
    small, large = _counts("small"), _counts("large")
    assert small.keys() == large.keys()
    grown = {key: (small[key], large[key]) for key in small if large[key] != small[key]}
    assert not grown, "queries (small -> large) that grow with the rows:\n" + "\n".join(
        f"  {n:<24} {p}{' #' + t if t else ''} as {u}: {a} -> {b}" for (n, p, t, u), (a, b) in grown.items()
    )
    # The measurement measures: a list does run queries (its rows, the user's roles).
    assert small[("containers:list", "/containers/", "", "demo-viewer")] >= 3
