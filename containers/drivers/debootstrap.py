"""Debian root filesystems built with debootstrap, cached per release and architecture.

Shared by native LXC creates and (later) libvirt-LXC domains. The first build of a
release downloads it from the Debian mirror the host's apt sources name (a long
operation whose progress comes from debootstrap's ``I: Retrieving/Validating/
Unpacking/Configuring`` lines); later builds copy the cached tree, as the seed notes.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from console.runner import CommandError, Runner

DEFAULT_CACHE = "/var/cache/lxc-console/debian"
_RELEASE_RE = re.compile(r"^[a-z][a-z0-9-]{1,30}$")
_ARCH_RE = re.compile(r"^[a-z0-9]{2,12}$")
_MIRROR_RE = re.compile(r"^(https?|file)://[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]+$")

ProgressCallback = Callable[[int, str], None]

# (prefix of an "I: " line, start %, end %) of each phase of a debootstrap run.
_PHASES = [
    ("Retrieving", 5, 40),
    ("Validating", 5, 40),
    ("Extracting", 40, 50),
    ("Unpacking", 50, 70),
    ("Configuring", 70, 92),
]


def mirror_from_apt_sources(root: str = "/") -> str | None:
    """The first Debian archive URI of the host's apt sources (deb822 ``.sources`` or ``sources.list``).

    Security and update suites are skipped: debootstrap wants the main archive.
    """
    base = Path(root) / "etc/apt"
    for path in sorted((base / "sources.list.d").glob("*.sources")):
        for stanza in path.read_text(errors="replace").split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            suites = fields.get("suites", "").split()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                continue
            if suites and all("security" in s or s.endswith(("-updates", "-backports")) for s in suites):
                continue
            for uri in fields.get("uris", "").split():
                if _MIRROR_RE.fullmatch(uri) and "security" not in uri:
                    return uri.rstrip("/")
    lists = [base / "sources.list", *sorted((base / "sources.list.d").glob("*.list"))]
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            parts = re.sub(r"\[[^\]]*\]", "", line).split()
            if len(parts) >= 3 and parts[0] == "deb" and _MIRROR_RE.fullmatch(parts[1]):
                if "security" in parts[1] or parts[2].endswith(("-security", "/updates")):
                    continue
                return parts[1].rstrip("/")
    return None


def host_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf", "i686": "i386"}.get(machine, machine)


def validate(release: str, arch: str, mirror: str) -> None:
    if not _RELEASE_RE.fullmatch(release or ""):
        raise CommandError(f"invalid Debian release name {release!r}")
    if not _ARCH_RE.fullmatch(arch or ""):
        raise CommandError(f"invalid architecture {arch!r}")
    if not _MIRROR_RE.fullmatch(mirror or ""):
        raise CommandError(f"invalid mirror URL {mirror!r}")


class DebootstrapProgress:
    """Turns debootstrap's ``I:`` lines into a rising percentage within each phase."""

    def __init__(self, report: ProgressCallback) -> None:
        self.report = report
        self.counts: dict[str, int] = {}
        self.last = 0

    def __call__(self, stream: str, line: str) -> None:
        if not line.startswith("I: "):
            return
        text = line[3:]
        for prefix, start, end in _PHASES:
            if text.startswith(prefix):
                n = self.counts.get(prefix, 0) + 1
                self.counts[prefix] = n
                # Packages per phase are not announced: approach the phase's end asymptotically.
                percent = int(start + (end - start) * (1 - 0.97**n))
                if percent > self.last:
                    self.last = percent
                    self.report(percent, text[:120])
                return
        if text.startswith("Base system installed successfully"):
            self.last = 95
            self.report(95, text)


def cached_rootfs(cache_dir: str, release: str, arch: str) -> Path:
    return Path(cache_dir) / f"rootfs-{release}-{arch}"


def ensure_rootfs(
    runner: Runner,
    *,
    release: str,
    arch: str,
    mirror: str,
    cache_dir: str = DEFAULT_CACHE,
    include: str = "",
    progress: ProgressCallback | None = None,
    timeout: float = 1800,
) -> tuple[Path, bool]:
    """Return the cached rootfs of ``release``/``arch``, building it first if needed.

    Returns ``(path, built)``. A failed build removes its partial tree and raises a
    CommandError carrying debootstrap's own last lines.
    """
    validate(release, arch, mirror)
    final = cached_rootfs(cache_dir, release, arch)
    if (final / "bin").exists() or (final / "usr/bin").exists():
        runner.log(f"# using the cached root filesystem {final}")
        return final, False
    partial = Path(cache_dir) / f"partial-{release}-{arch}"
    if partial.exists():
        shutil.rmtree(partial)
    os.makedirs(cache_dir, exist_ok=True)
    tracker = DebootstrapProgress(progress or (lambda _p, _t: None))
    argv = ["debootstrap", "--variant=minbase", f"--arch={arch}"]
    if include:
        if not re.fullmatch(r"[a-z0-9][a-z0-9+.,-]*", include):
            raise CommandError(f"invalid package list {include!r}")
        argv.append(f"--include={include}")
    argv += [release, str(partial), mirror]
    try:
        result = runner.run(argv, check=False, timeout=timeout, on_line=tracker)
    except CommandError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if result.returncode != 0:
        log = partial / "debootstrap" / "debootstrap.log"
        tail_lines = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()][-6:]
        if log.is_file():
            tail_lines += log.read_text(errors="replace").strip().splitlines()[-6:]
        shutil.rmtree(partial, ignore_errors=True)
        last = next(
            (ln for ln in reversed(tail_lines) if ln.startswith("E:")), tail_lines[-1] if tail_lines else ""
        )
        raise CommandError(
            f"debootstrap failed: {last or 'exit status ' + str(result.returncode)}",
            argv=argv,
            returncode=result.returncode,
            stderr="\n".join(tail_lines),
        )
    os.replace(partial, final)
    return final, True


def copy_tree(runner: Runner, tree: str | Path, target: str | Path) -> None:
    """Copy a cached root filesystem into a new one, keeping hard links, ACLs, xattrs and ids."""
    runner.run(["rsync", "-aHAX", "--numeric-ids", f"{tree}/", f"{target}/"])
