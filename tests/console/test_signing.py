"""Operation signatures (console.signing): per-host keys, every signed field, the agent's own key."""

from __future__ import annotations

import pytest

from console import signing
from console.models import Host, Operation
from console.operations import SYSTEM, start_operation


def _op(host: Host, **kw) -> Operation:
    return start_operation(
        actor=None,
        ctx=SYSTEM,
        host=host,
        kind=kw.get("kind", "container.start"),
        target="container x/web",
        lock_key=f"container:{host.slug}:web",
        params=kw.get("params", {"name": "web", "lxc_path": "/var/lib/lxc", "n": 1}),
    )


@pytest.fixture
def two_hosts(db):
    return (
        Host.objects.create(slug="sa", name="a", lxc_path="/var/lib/lxc"),
        Host.objects.create(slug="sb", name="b", lxc_path="/var/lib/lxc"),
    )


def test_every_queued_operation_is_signed_and_verifies(two_hosts):
    op = _op(two_hosts[0])
    stored = Operation.objects.select_related("host").get(pk=op.pk)
    assert len(stored.signature) == 64
    assert signing.verifies(stored)


@pytest.mark.parametrize(
    "field, value",
    [
        ("kind", "container.destroy"),
        ("target", "container x/db"),
        ("lock_key", "other"),
        ("params", {"name": "db"}),
    ],
)
def test_changing_what_the_agent_runs_breaks_the_signature(two_hosts, field, value):
    op = Operation.objects.select_related("host").get(pk=_op(two_hosts[0]).pk)
    Operation.objects.filter(pk=op.pk).update(**{field: value})
    op.refresh_from_db()
    assert not signing.verifies(op)


def test_an_operation_moved_to_another_host_does_not_verify(two_hosts):
    a, b = two_hosts
    op = Operation.objects.select_related("host").get(pk=_op(a).pk)
    Operation.objects.filter(pk=op.pk).update(host=b)
    op = Operation.objects.select_related("host").get(pk=op.pk)
    assert not signing.verifies(op)


def test_hosts_keys_differ_and_an_agent_holds_only_its_own(two_hosts, settings, monkeypatch):
    a, b = two_hosts
    assert signing.derive_host_key("sa") != signing.derive_host_key("sb")
    op_a = Operation.objects.select_related("host").get(pk=_op(a).pk)
    op_b = Operation.objects.select_related("host").get(pk=_op(b).pk)
    key_a, key_b = signing.derive_host_key("sa"), signing.derive_host_key("sb")
    # The agent of sb, given only sb's key (as enrolment hands it out), without the master key.
    settings.CONSOLE_AGENT_KEY = key_b.hex()
    settings.SECRET_KEY = "not-the-console's"
    monkeypatch.setenv("CONSOLE_AGENT_HOST", "sb")
    assert signing.verifies(op_b)
    assert not signing.verifies(op_a)  # it cannot even compute sa's signature
    with pytest.raises(KeyError):
        signing.host_key(a)
    # What it can sign with its key never verifies for sa (sa's agent uses sa's key).
    forged_by_b = signing.signature_of(op_a, key=key_b)
    settings.CONSOLE_AGENT_KEY = key_a.hex()
    monkeypatch.setenv("CONSOLE_AGENT_HOST", "sa")
    assert signing.verifies(op_a)
    op_a.signature = forged_by_b
    assert not signing.verifies(op_a)


def test_unsigned_operation_does_not_verify(two_hosts):
    op = Operation.objects.create(kind="container.start", host=two_hosts[0], target="t", lock_key="k")
    assert op.signature == ""
    assert not signing.verifies(op)


def test_a_new_key_generation_voids_the_old_key(two_hosts):
    a = two_hosts[0]
    op = Operation.objects.select_related("host").get(pk=_op(a).pk)
    old_key = signing.derive_host_key("sa")
    assert signing.signature_of(op, key=old_key) == op.signature
    Host.objects.filter(pk=a.pk).update(key_generation=1)
    op = Operation.objects.select_related("host").get(pk=op.pk)
    assert not signing.verifies(op)  # signed under generation 0
    signing.sign(op)
    assert signing.verifies(op)
    assert signing.signature_of(op, key=old_key) != op.signature
    assert signing.derive_host_key("sa", 1) != old_key
