"""A libvirt domain on a Debian root filesystem built with the shared, cached debootstrap."""

from __future__ import annotations

import os
import shutil

import pytest

from console.errors import InvalidInput
from console.models import Host
from console.operations import RequestContext
from containers.libvirt import services as domains
from tests.host.helpers import succeeded as ok
from tests.hosttools import require_tool, virsh
from tests.libvirt.test_host_libvirt import domain_row

pytestmark = [pytest.mark.host, pytest.mark.slow]
CTX = RequestContext(ip="127.0.0.1", request_id="libvirt-debootstrap-test")


def test_domain_on_a_debootstrap_rootfs(libvirt_env, admin, start_agent, unique, settings, tmp_path):
    require_tool("debootstrap", "rsync")
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    settings.DOMAIN_ROOTFS_DIR = str(tmp_path / "domains")
    with pytest.raises(InvalidInput, match="not both"):
        domains.define_domain(
            actor=admin,
            ctx=CTX,
            host=host,
            name=unique,
            memory_mib=128,
            vcpus=1,
            init="/sbin/init",
            rootfs="/srv/x",
            debootstrap_release="bookworm",
        )
    with pytest.raises(InvalidInput):
        domains.define_domain(
            actor=admin,
            ctx=CTX,
            host=host,
            name=unique,
            memory_mib=128,
            vcpus=1,
            init="/sbin/init",
            rootfs="",
            debootstrap_release="bookworm; id",
        )
    op = ok(
        domains.define_domain(
            actor=admin,
            ctx=CTX,
            host=host,
            name=unique,
            memory_mib=128,
            vcpus=1,
            init="/sbin/init",
            rootfs="",
            debootstrap_release="bookworm",
            bridge="lxcbr0",
        ),
        timeout=900,
    )
    rootfs = tmp_path / "domains" / unique / "rootfs"
    try:
        assert (rootfs / "etc" / "debian_version").is_file()
        assert (rootfs / "etc" / "hostname").read_text().strip() == unique
        assert any(c["argv"][0] == "rsync" for c in op.commands)
        assert "debootstrap" in op.log or "using the cached root filesystem" in op.log
        dom = domain_row(host, unique)
        assert dom is not None and str(rootfs) in dom.domain_xml
        assert virsh("domstate", unique).stdout.strip() == "shut off"
    finally:
        virsh("undefine", unique)
        shutil.rmtree(tmp_path / "domains", ignore_errors=True)
    assert not os.path.exists(rootfs)
