"""The seed chapter's ``lxc.lxcpath`` trick from the host page: the real /etc/lxc/lxc.conf is
written by the agent, read back with ``lxc-config``, and put back as it was after the test."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from console.models import Host
from console.operations import RequestContext
from containers import services
from tests.host.helpers import wait_terminal

pytestmark = pytest.mark.host
CTX = RequestContext(ip="192.0.2.31", request_id="req-lxc-conf")


@pytest.fixture
def restore_lxc_conf():
    conf = Path(settings.LXC_SYSTEM_CONF)
    before = conf.read_text() if conf.exists() else None
    try:
        yield conf
    finally:
        if before is None:
            conf.unlink(missing_ok=True)
        else:
            conf.write_text(before)


def lxc(*argv: str) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True, timeout=30).stdout.strip()


def test_the_default_lxc_path_points_lxc_ls_at_a_pool(admin, start_agent, restore_lxc_conf):
    agent = start_agent()
    host = agent.wait_registered()
    default = host.capabilities["lxc"]["system_config"]["lxc.lxcpath"]
    assert default == lxc("lxc-config", "lxc.lxcpath")  # what the agent read is what LXC says
    name = f"conf-{uuid.uuid4().hex[:6]}"
    assert (
        wait_terminal(services.create_container(actor=admin, ctx=CTX, host=host, name=name)).status
        == "succeeded"
    )

    op = wait_terminal(
        services.set_lxc_system_config(
            actor=admin, ctx=CTX, host=host, key="lxc.lxcpath", value=agent.lxc_path
        )
    )
    assert op.status == "succeeded", op.log
    # As in the seed: lxc-config and a plain lxc-ls (no --lxcpath) now see the pool's containers.
    assert lxc("lxc-config", "lxc.lxcpath") == agent.lxc_path
    assert name in lxc("lxc-ls", "-1").split()
    assert f"lxc.lxcpath = {agent.lxc_path}" in restore_lxc_conf.read_text()
    host = Host.objects.get(pk=host.pk)
    assert host.capabilities["lxc"]["system_config"]["lxc.lxcpath"] == agent.lxc_path

    # ... and back, the seed's clean-up, which the page offers the same way.
    host.extra_lxc_paths = [default]
    host.save(update_fields=["extra_lxc_paths"])
    op = wait_terminal(
        services.set_lxc_system_config(actor=admin, ctx=CTX, host=host, key="lxc.lxcpath", value=default)
    )
    assert op.status == "succeeded", op.log
    assert lxc("lxc-config", "lxc.lxcpath") == default
