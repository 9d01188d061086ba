"""Redis ACLs: an agent's Redis user reaches its own queue and keys only (a real Redis with an
ACL file, real agents)."""

from __future__ import annotations

import uuid

import pytest
import redis

from console import broker_acl
from console.models import Host
from console.operations import RequestContext
from containers import services
from tests.host.helpers import wait_terminal

pytestmark = pytest.mark.host


def _refused(call) -> str:
    with pytest.raises(redis.exceptions.NoPermissionError) as refused:
        call()
    return str(refused.value)


def test_an_agents_redis_user_reaches_its_own_queue_only(admin, acl_redis, start_agent, monkeypatch):
    monkeypatch.setenv("TEST_AGENT_CLAIM_SECONDS", "60")
    slugs = [f"t-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    passwords = {slug: broker_acl.new_password() for slug in slugs}
    for slug in slugs:
        broker_acl.set_user(acl_redis.client, slug, passwords[slug])
    assert broker_acl.persist(acl_redis.client)
    assert f"user agent-{slugs[0]} on" in acl_redis.aclfile.read_text()
    acl_redis.client.execute_command("ACL", "LOG", "RESET")
    mine, other = slugs
    agents = [
        start_agent(slug=slug, broker=acl_redis.url_for(f"agent-{slug}", passwords[slug])) for slug in slugs
    ]

    # What an agent does with its user works: an operation woken by the broker (both agents'
    # claim from the database is slowed down, so the run is the message's) runs on its host.
    host = Host.objects.get(slug=mine)
    op = services.create_container(actor=admin, ctx=RequestContext(), host=host, name="acl")
    op = wait_terminal(op)
    assert op.status == "succeeded", op.error + op.log
    op = wait_terminal(
        services.start_container(actor=admin, ctx=RequestContext(), container=host.containers.get(name="acl"))
    )
    assert op.status == "succeeded", op.error + op.log
    # ... and Redis refused it nothing: the user's keys and commands are all the agent uses.
    log = acl_redis.client.execute_command("ACL", "LOG")
    assert log == [], log

    # With the first agent's credentials, the other host's queue and keys are out of reach.
    stolen = redis.Redis.from_url(acl_redis.url_for(f"agent-{mine}", passwords[mine]))
    assert stolen.llen(f"host.{mine}") == 0  # its own queue: allowed
    # Commands it has, on the other host's keys: refused for the key.
    for call in (
        lambda: stolen.lpush(f"host.{other}", b"{}"),
        lambda: stolen.rpush(f"host.{other}", b"{}"),
        lambda: stolen.brpop([f"host.{other}"], timeout=1),
        lambda: stolen.llen(f"host.{other}"),
        lambda: stolen.smembers(f"_kombu.binding.host.{other}"),
        lambda: stolen.sadd(f"_kombu.binding.host.{other}", b"x"),
        lambda: stolen.hget(f"unacked.host.{other}", "tag"),
        lambda: stolen.hset("unacked", "tag", b"x"),  # kombu's shared default hash
        lambda: stolen.get(f"unacked_mutex.host.{other}"),
        lambda: stolen.rpush(f"terminal:{other}:1:in", b"ls\n"),
        lambda: stolen.lpop(f"terminal:{other}:1:out"),
    ):
        assert "no permissions to access one of the keys" in _refused(call)
    # Reading a list, listing keys, administration, listening to events: no such command for it.
    for call in (
        lambda: stolen.lrange(f"host.{other}", 0, -1),
        lambda: stolen.lrange(f"host.{mine}", 0, -1),
        lambda: stolen.keys("*"),
        lambda: stolen.scan(0),
        lambda: stolen.hgetall(f"unacked.host.{mine}"),
        lambda: stolen.flushall(),
        lambda: stolen.config_get("*"),
        lambda: stolen.execute_command("ACL", "SETUSER", f"agent-{mine}", "~*"),
        lambda: stolen.execute_command("SUBSCRIBE", "console:events"),
    ):
        assert "has no permissions to run" in _refused(call)
    assert "no permissions to access one of the channels" in _refused(lambda: stolen.publish("other", b"x"))
    assert acl_redis.client.llen(f"host.{other}") == 0
    assert all(agent.proc.poll() is None for agent in agents)

    # Redis restarted (killed, as a crash): the users came back from the ACL file (ACL SAVE), the
    # agent reconnects on its own user and the next operation is woken by the broker again.
    acl_redis.kill()
    acl_redis.start()
    acl_redis.client.execute_command("ACL", "LOG", "RESET")
    container = host.containers.get(name="acl")
    op = wait_terminal(services.stop_container(actor=admin, ctx=RequestContext(), container=container), 60)
    assert op.status == "succeeded", op.error + op.log
    assert acl_redis.client.execute_command("ACL", "LOG") == []
    assert b"user=agent-" + mine.encode() in acl_redis.client.execute_command("CLIENT", "LIST")
