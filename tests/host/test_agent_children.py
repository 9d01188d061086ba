"""An agent that stops, warmly (SIGTERM) or killed (SIGKILL), leaves no lxc-monitor of its own
behind (PR_SET_PDEATHSIG); the commands of its operations, on the contrary, outlive it
(tests/host/test_crash_recovery.py)."""

from __future__ import annotations

import subprocess

import pytest

from tests.hosttools import wait_for

pytestmark = pytest.mark.host


def monitors(lxc_path: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "lxc-monitor -P" in line and line.endswith(lxc_path)]


def test_no_lxc_monitor_outlives_its_agent(start_agent):
    agent = start_agent()
    wait_for(lambda: monitors(agent.lxc_path), 20, what="the agent's lxc-monitor")
    agent.stop()
    wait_for(lambda: not monitors(agent.lxc_path), 10, what="lxc-monitor to end after SIGTERM")
    agent = start_agent(slug=agent.slug, lxc_path=agent.lxc_path)
    wait_for(lambda: monitors(agent.lxc_path), 20, what="the agent's lxc-monitor")
    agent.kill()
    wait_for(lambda: not monitors(agent.lxc_path), 10, what="lxc-monitor to end after SIGKILL")
