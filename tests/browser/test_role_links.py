"""Every page of an object offers every action the user's role allows on it, and no other: no
action needs a typed URL, and none is offered only to be refused (issue 11). For admin, operator
and viewer, the actions found on the page (its POST forms and its links to action pages, resolved
to URL names) are compared with what tests/console/test_permission_matrix.py's MATRIX says the
role may POST there. The container and domain pages have their own tests, state by state
(test_container_page_actions.py, test_domain_page.py).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.urls import resolve

from console.models import Host, Operation, RoleBinding, Team
from console.operations import RequestContext
from containers import services as containers
from networks import services as networks
from networks.models import Network
from storage import services as storage
from storage.models import LoopDevice, Pool
from tests.browser.helpers import PASSWORD, login
from tests.console.test_permission_matrix import MATRIX
from tests.host.helpers import succeeded
from tests.hosttools import wait_for

pytestmark = [pytest.mark.host, pytest.mark.browser]
CTX = RequestContext(ip="127.0.0.1", request_id="role-links")
RANK = {"view": 1, "operate": 2, "admin": 3, "super": 4}
ROLES = {"admin": "admin", "operator": "operate", "viewer": "view"}


def ok(op: Operation, timeout: float = 120) -> Operation:
    return succeeded(op, timeout)


@pytest.fixture(scope="module")
def objects(world):
    """A loop device, a dir pool, an inactive network with DHCP, and an operation that waits (its
    host has no agent), made through the services; a second admin who is not a superuser."""
    admin, host = world.users["admin"], world.host
    user = get_user_model().objects.create_user(username=f"{world.prefix}-plainadmin", password=PASSWORD)
    team = Team.objects.create(name=f"{world.prefix}-plain-admins")
    team.members.add(user)
    RoleBinding.objects.create(team=team, role="admin", all_hosts=True)
    op = ok(storage.create_loop_device(actor=admin, ctx=CTX, host=host, name=world.name("disk"), size="16M"))
    loop = wait_for(lambda: LoopDevice.objects.filter(device=op.result["device"]).first(), 30, what="loop")
    ok(storage.create_pool(actor=admin, ctx=CTX, host=host, name=world.name("dirpool"), kind="dir"))
    third = int(world.prefix[1:3], 16)
    ok(
        networks.define_network(
            actor=admin,
            ctx=CTX,
            host=host,
            name=world.name("net"),
            bridge=f"bl{world.prefix}",
            forward_mode="none",
            address=f"10.215.{third}.1",
            netmask="255.255.255.0",
            dhcp_start=f"10.215.{third}.100",
            dhcp_end=f"10.215.{third}.200",
        )
    )
    offline = Host.objects.create(
        slug=f"{world.prefix}-offline",
        name="a host whose agent is not running",
        lxc_path="/var/lib/lxc",
        capabilities={"lxc": {"available": True, "version": "5.0.2", "templates": ["busybox"]}},
    )
    waiting = containers.create_container(actor=admin, ctx=CTX, host=offline, name=world.name("waits"))
    assert Operation.objects.get(pk=waiting.pk).status == "pending"
    return {
        "loop": loop,
        "pool": Pool.objects.get(name=world.name("dirpool")),
        "network": Network.objects.get(name=world.name("net")),
        "waiting": waiting,
    }


def _need(name: str) -> str:
    get, post = MATRIX[name]
    need = post or get
    assert need is not None, f"{name} takes neither a GET nor a POST"
    return need


def _found(page) -> set[str]:
    """The page's actions: POST forms (their action or hx-post) and links, as URL names (with the
    action word for the URLs that take one)."""
    urls = page.eval_on_selector_all(
        "main form, main a[href]",
        """els => els.flatMap(e => e.tagName === 'A' ? [e.getAttribute('href')]
            : (e.method || '').toLowerCase() === 'post' || e.hasAttribute('hx-post')
              ? [e.getAttribute('hx-post') || e.getAttribute('action') || location.pathname] : [])""",
    )
    out = set()
    for url in urls:
        path = urlsplit(url).path
        if not path.startswith("/"):
            continue
        try:
            match = resolve(path)
        except Exception:
            continue
        word = match.kwargs.get("action") or match.kwargs.get("change")
        out.add(f"{match.view_name}/{word}" if word else match.view_name)
    return out


def _pages(world, objects) -> dict[str, tuple[str, set[str]]]:
    """Page -> (URL, every action an admin may take there in the objects' present states)."""
    pool, net, op = objects["pool"], objects["network"], objects["waiting"]
    return {
        "host": (
            f"/hosts/{world.host.slug}/",
            {"host-agent", "containers:lxc-conf", "containers:mount-roots", "host-update"},
        ),
        "autostart": (f"/containers/autostart/{world.host.slug}/", {"containers:autostart"}),
        "storage": (
            "/storage/",
            {
                "storage:loop-create",
                "storage:pool-create",
                "storage:loop-detach",
                "storage:loop-mkfs",
                "storage:pool-destroy",
            },
        ),
        "pool": (f"/storage/pools/{pool.pk}/", {"storage:pool-destroy", "containers:create"}),
        "networks": ("/networks/", {"networks:create"}),
        "network": (
            f"/networks/{net.pk}/",
            {"networks:action/start", "networks:action/undefine", "networks:action/autostart"}
            | {"networks:reservation/add"},
        ),
        "containers": ("/containers/", {"containers:create", "containers:libvirt-create"}),
        "operation": (f"/operations/{op.pk}/", {"operation-cancel"}),
    }


def _name(action: str) -> str:
    return action.partition("/")[0]


@pytest.mark.parametrize("role", ["admin", "operator", "viewer", "plainadmin"])
def test_each_object_page_offers_what_the_role_may_do(role, world, browser, objects):
    context = browser.new_context()
    page = context.new_page()
    login(page, world.base, f"{world.prefix}-{role}")
    rank = RANK["super"] if role == "admin" else RANK[ROLES.get(role, "admin")]
    wrong = {}
    for label, (url, actions) in _pages(world, objects).items():
        page.goto(world.base + url)
        found = _found(page)
        wanted = {a for a in actions if RANK[_need(_name(a))] <= rank}
        refused = actions - wanted
        missing, extra = wanted - found, refused & found
        if missing or extra:
            wrong[label] = {"missing": sorted(missing), "offered but refused": sorted(extra)}
    context.close()
    assert not wrong, wrong
