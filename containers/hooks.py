"""LXC's nine container hooks: types, what each receives, and script validation."""

from __future__ import annotations

from dataclasses import dataclass

from console.errors import InvalidInput

MAX_SCRIPT_BYTES = 64 * 1024


@dataclass(frozen=True)
class HookType:
    name: str
    when: str
    # Where the script runs: "host" (host filesystem and namespaces), "container-ns" (host
    # filesystem, container namespaces) or "container" (inside the container's rootfs).
    where: str = "host"


HOOK_TYPES: list[HookType] = [
    HookType("pre-start", "before the container's ttys, consoles or mounts are set up", "host"),
    HookType("pre-mount", "in the container's mount namespace, before the rootfs is mounted", "container-ns"),
    HookType("mount", "after mounting, before pivot_root", "container-ns"),
    HookType(
        "autodev", "after mounting and /dev is populated (lxc.autodev = 1), before pivot_root", "container-ns"
    ),
    HookType(
        "start",
        "in the container, just before its init runs (the script is copied into the rootfs)",
        "container",
    ),
    HookType(
        "stop", "in the host's namespaces with the container's namespace references, after it stopped", "host"
    ),
    HookType("post-stop", "after the container has been shut down", "host"),
    HookType("clone", "when the container is cloned into a new one (lxc-copy)", "host"),
    HookType("destroy", "when the container is destroyed (lxc-destroy)", "host"),
]
HOOKS = {h.name: h for h in HOOK_TYPES}

# What every hook receives, from lxc.container.conf(5).
HOOK_VARIABLES = [
    ("LXC_NAME", "the container's name"),
    ("LXC_CONFIG_FILE", "the path of the container's configuration file"),
    ("LXC_ROOTFS_MOUNT", "where the container's root filesystem is mounted"),
    (
        "LXC_ROOTFS_PATH",
        "the rootfs path of lxc.rootfs.path, without its store prefix (/var/lib/lxc/web/rootfs)",
    ),
    ("LXC_HOOK_TYPE", "the hook's type (pre-start, stop, ...)"),
    ("LXC_HOOK_SECTION", "lxc (the config section the hook comes from)"),
    ("LXC_SRC_NAME", "clone hooks: the name of the original container"),
    ("LXC_TARGET", "stop hooks: 'stop' or 'reboot'"),
    ("LXC_CGNS_AWARE", "set when the hook knows about cgroup namespaces"),
]
# Hooks also get arguments: the container name, "lxc" and the hook type.


def validate_hook_type(value: object) -> str:
    if not isinstance(value, str) or value not in HOOKS:
        raise InvalidInput(f"unknown hook type; one of: {', '.join(HOOKS)}", field="hook")
    return value


def validate_script(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("the hook script is empty", field="script")
    text = value.replace("\r\n", "\n")
    if "\x00" in text:
        raise InvalidInput("the hook script must not contain NUL characters", field="script")
    if len(text.encode()) > MAX_SCRIPT_BYTES:
        raise InvalidInput(f"the hook script is larger than {MAX_SCRIPT_BYTES // 1024} KiB", field="script")
    if not text.startswith("#!/"):
        raise InvalidInput(
            "the script must start with an interpreter line such as #!/bin/sh (it is executed directly)",
            field="script",
        )
    return text if text.endswith("\n") else text + "\n"
