"""The browser terminal on a libvirt domain's console (virsh console), for real."""

from __future__ import annotations

import json
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from console.models import Host, Operation
from console.operations import RequestContext
from containers import terminal
from containers.libvirt import services as domains
from tests.host.helpers import browser_session
from tests.host.helpers import succeeded as ok
from tests.libvirt.test_host_libvirt import busybox_rootfs, domain_row

pytestmark = pytest.mark.host
CTX = RequestContext(ip="127.0.0.1", request_id="libvirt-terminal-test")


def test_terminal_on_a_libvirt_domain_console(libvirt_env, admin, start_agent, unique, web):
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    rootfs = busybox_rootfs(agent.lxc_path, f"{unique}-fs")
    ok(
        domains.define_domain(
            actor=admin,
            ctx=CTX,
            host=host,
            name=unique,
            memory_mib=64,
            vcpus=1,
            init="/bin/sh",
            rootfs=rootfs,
            bridge="lxcbr0",
        )
    )
    ok(domains.domain_action(actor=admin, ctx=CTX, container=domain_row(host, unique), action="start"))
    origin = f"http://{web}"
    key, cookie = browser_session(admin)
    ticket = terminal.issue_ticket(
        actor=admin, ctx=CTX, container=domain_row(host, unique), origin=origin, session_key=key
    )
    seen = b""
    url = f"ws://{web}/ws/terminal/{ticket.token}/"
    with connect(url, origin=origin, additional_headers=cookie, open_timeout=10) as ws:
        deadline = time.monotonic() + 20
        sent_at = 0.0
        while b"console-42" not in seen and time.monotonic() < deadline:
            if time.monotonic() - sent_at > 2:  # the console may need a moment (and an Enter) to wake up
                ws.send(json.dumps({"type": "input", "data": "echo console-$((6*7))\r"}))
                sent_at = time.monotonic()
            try:
                frame = ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            except ConnectionClosed:
                break
            if isinstance(frame, bytes):
                seen += frame
    session = Operation.objects.filter(kind="container.terminal").latest("pk")
    assert b"console-42" in seen, (seen[-500:], session.log)
    assert session.params["backend"] == "libvirt"
    assert "$ virsh -c lxc:/// console" in session.log
