"""Storage settings. Read at call time from Django settings, else the environment, so an agent
started with ``STORAGE_IMAGE_DIR=...`` and the web process agree without editing console settings."""

from __future__ import annotations

import os

from django.conf import settings

from console.paths import canonical_path


def _setting(name: str, default: str) -> str:
    return str(getattr(settings, name, None) or os.environ.get(name) or default)


def image_dir() -> str:
    """The only directory backing files of loop devices are created in."""
    return canonical_path(
        _setting("STORAGE_IMAGE_DIR", "/var/lib/lxc-console/storage"),
        field="STORAGE_IMAGE_DIR",
        what="the image directory",
        directory=True,
    )


def pool_dir() -> str:
    """Where pools are mounted / rooted: ``<pool_dir>/<pool name>`` is the pool's LXC path."""
    return canonical_path(
        _setting("STORAGE_POOL_DIR", "/var/lib/lxc-console/pools"),
        field="STORAGE_POOL_DIR",
        what="the pool directory",
        directory=True,
    )
