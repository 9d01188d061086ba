"""Storage settings. Read at call time from Django settings, else the environment, so an agent
started with ``STORAGE_IMAGE_DIR=...`` and the web process agree without editing console settings."""

from __future__ import annotations

import os

from django.conf import settings


def _setting(name: str, default: str) -> str:
    return str(getattr(settings, name, None) or os.environ.get(name) or default)


def image_dir() -> str:
    """The only directory backing files of loop devices are created in."""
    return os.path.normpath(_setting("STORAGE_IMAGE_DIR", "/var/lib/lxc-console/storage"))


def pool_dir() -> str:
    """Where pools are mounted / rooted: ``<pool_dir>/<pool name>`` is the pool's LXC path."""
    return os.path.normpath(_setting("STORAGE_POOL_DIR", "/var/lib/lxc-console/pools"))
