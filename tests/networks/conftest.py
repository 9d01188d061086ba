"""Network tests: the libvirt fixtures (test prefix, clean-up) and through them the host fixtures."""

from tests.libvirt.conftest import *  # noqa: F403
