"""What the browser walks share: logging in, and reading what a page's live panels received."""

from __future__ import annotations

import subprocess
from pathlib import Path

SHOTS = Path(__file__).resolve().parents[2] / "var" / "test-logs"
PASSWORD = "browser-password-123"


def login(page, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)


def virsh(*words: str) -> subprocess.CompletedProcess:
    return subprocess.run(["virsh", "-c", "lxc:///", *words], capture_output=True, text=True, timeout=60)


def busybox(lxc_path: str, name: str, *extra_config: str) -> str:
    """A busybox container made with lxc-create (unconfined: the kernel has no AppArmor)."""
    subprocess.run(
        ["lxc-create", "-P", lxc_path, "-n", name, "-t", "busybox"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with open(f"{lxc_path}/{name}/config", "a") as fh:
        fh.write("".join(f"{line}\n" for line in ("lxc.apparmor.profile = unconfined", *extra_config)))
    return f"{lxc_path}/{name}/rootfs"
