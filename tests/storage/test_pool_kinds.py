"""One class per pool kind: every kind answers the same questions, nobody else branches on the
kind, and the two fields that moved (a zpool's name, a domain's XML) are migrated."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from storage.choices import PoolKind
from storage.drivers.pool import PoolType, backing_stores, pool_type

ROOT = Path(__file__).resolve().parents[2]
# The places that used to branch on the kind 31 times.
CALLERS = [
    "storage/handlers.py",
    "storage/inventory.py",
    "storage/dependencies.py",
    "storage/services.py",
    "containers/services.py",
    "containers/drivers/lxc.py",
]


@pytest.mark.parametrize("kind", PoolKind.values)
def test_every_kind_has_one_class_with_every_method(kind):
    cls = type(pool_type(kind))
    assert cls.kind == kind and cls.noun
    for method in ("create", "read", "destroy"):
        assert getattr(cls, method) is not getattr(PoolType, method), f"{kind} does not define {method}"
    assert cls.__module__ == f"storage.drivers.{kind}", "a kind lives in its driver module"


def test_backing_stores_are_dir_and_every_kind():
    assert set(backing_stores()) == set(PoolKind.values) and backing_stores()[0] == "dir"


@pytest.mark.parametrize("path", CALLERS)
def test_nobody_else_branches_on_the_pool_kind(path):
    """``PoolKind.X`` compared, or ``pool.kind == "..."``: a new kind would have to edit this file."""
    tree = ast.parse((ROOT / path).read_text())
    branches = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
            text = " ".join(ast.unparse(p) for p in parts)
            constants = [p for p in parts if isinstance(p, ast.Constant)]
            constants += [e for p in parts if isinstance(p, ast.Tuple | ast.List | ast.Set) for e in p.elts]
            literal_kinds = [
                c for c in constants if getattr(c, "value", None) in set(PoolKind.values) - {"dir"}
            ]
            members = re.search(r"PoolKind\.(?!values|choices|labels|names)", text)
            if members or (literal_kinds and any(w in text for w in ("kind", "backing_store", "requested"))):
                branches.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    assert not branches, branches


def test_lxc_create_arguments_come_from_the_kind():
    assert pool_type("dir").lxc_create_args(vgname=None, fssize=None, zfsroot=None) == []
    assert pool_type("btrfs").lxc_create_args(vgname=None, fssize=None, zfsroot=None) == ["-B", "btrfs"]
    assert pool_type("lvm").lxc_create_args(vgname="lxc", fssize="1G", zfsroot=None) == [
        "-B", "lvm", "--vgname", "lxc", "--fssize", "1G", "--fstype", "ext4",
    ]  # fmt: skip
    assert pool_type("zfs").lxc_create_args(vgname=None, fssize=None, zfsroot="tank") == [
        "-B",
        "zfs",
        "--zfsroot",
        "tank",
    ]
    with pytest.raises(ValueError):
        pool_type("lvm").lxc_create_args(vgname="lxc", fssize="0G", zfsroot=None)


def _migrate(targets: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _host(slug: str) -> int:
    """A host row made with today's model: these tests migrate storage or containers back, not
    console, whose table keeps today's columns (an old model would leave the new ones empty)."""
    from console.models import Host

    return Host.objects.create(slug=slug, name=slug, lxc_path="/var/lib/lxc").pk


@pytest.mark.django_db(transaction=True)
def test_the_zpool_name_moves_out_of_vg_name_and_back():
    old = _migrate([("storage", "0003_host_zpools")])
    host = _host("mig")
    Pool = old.get_model("storage", "Pool")
    Pool.objects.create(host_id=host, name="tank", kind="zfs", vg_name="tank0")
    Pool.objects.create(host_id=host, name="bare", kind="zfs", vg_name="")
    Pool.objects.create(host_id=host, name="vg", kind="lvm", vg_name="lxc")
    try:
        new = _migrate([("storage", "0004_pool_zpool")])
        rows = {p.name: (p.zpool, p.vg_name) for p in new.get_model("storage", "Pool").objects.all()}
        assert rows == {"tank": ("tank0", ""), "bare": ("bare", ""), "vg": ("", "lxc")}
        old = _migrate([("storage", "0003_host_zpools")])
        rows = {p.name: p.vg_name for p in old.get_model("storage", "Pool").objects.all()}
        assert rows == {"tank": "tank0", "bare": "bare", "vg": "lxc"}
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_a_domains_xml_moves_out_of_config_text():
    old = _migrate([("containers", "0007_terminal_ticket_session")])
    host = _host("mig2")
    Container = old.get_model("containers", "Container")
    Container.objects.create(host_id=host, name="dom", backend="libvirt", config_text="<domain type='lxc'/>")
    Container.objects.create(
        host_id=host, name="nat", backend="lxc", lxc_path="/var/lib/lxc", config_text="lxc.x = 1"
    )
    try:
        new = _migrate([("containers", "0008_domain_xml")])
        rows = {
            c.name: (c.config_text, c.domain_xml)
            for c in new.get_model("containers", "Container").objects.all()
        }
        assert rows == {"dom": ("", "<domain type='lxc'/>"), "nat": ("lxc.x = 1", "")}
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
