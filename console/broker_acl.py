"""The Redis user of one host's agent (Redis ACLs): only its own keys, only the commands it uses.

What an agent of host ``<slug>`` touches in Redis, and nothing else:

* ``host.<slug>``: its Celery queue (BRPOP; LPUSH/RPUSH when kombu restores an unacked message).
  ``priority_steps`` is ``[0]`` on both sides, so there are no ``host.<slug>\\x06\\x16<n>``
  priority lists.
* ``_kombu.binding.host.<slug>`` and ``_kombu.binding_permanent.host.<slug>``: the binding of its
  queue to its exchange, written when the worker declares its queue (SADD; SMEMBERS on lookup).
* ``unacked.host.<slug>``, ``unacked_index.host.<slug>``, ``unacked_mutex.host.<slug>``: kombu's
  record of delivered, not yet acknowledged messages (late acks) and the lock of its restore
  sweep. Kombu's defaults (``unacked``, ``unacked_index``, ``unacked_mutex``) are one hash for
  every consumer: with it an agent could read every host's in-flight messages and plant an entry
  that a sweep pushes into another host's queue, so each agent has its own (transport options,
  console.settings).
* ``terminal:<slug>:*``: the byte lists of its browser terminals.
* the pub/sub channel ``console:events``: PUBLISH only (no SUBSCRIBE: an agent cannot listen to
  the events of other hosts). An agent can publish a made-up "row N changed" event; it carries
  no data, pages only re-read what they may see.

The agent runs without the shared keys a Celery worker uses by default: remote control off
(no ``celery.pidbox`` broadcast exchange, ``_kombu.binding.celery.pidbox`` or reply queues), no
events, gossip, mingle or heartbeat (no ``celeryev`` fanout). Whatever a host can still push into
its own queue reaches only its own agent, and every message is checked against the signed
operation row (console.signing).
"""

from __future__ import annotations

import secrets

# What the agent's Celery worker (kombu 5.7's Redis transport, redis-py 8), the event publisher and
# the terminal relay send: read from Redis's MONITOR with an agent running operations, plus the
# paths that did not run there (restore of an unacked message, terminals), read from their code.
# Lua scripts run with the caller's ACL: their GET and DEL are checked against the same keys.
COMMANDS = (
    # connection (HELLO carries AUTH; SELECT only for a database other than 0)
    "hello",
    "auth",
    "ping",
    "client|setname",
    "select",
    "quit",
    # its queue: wait for a message; kombu's restore of an unacknowledged one pushes it back
    "brpop",
    "llen",
    "lpush",
    "rpush",
    # the binding of its queue, declared when the worker starts
    "sadd",
    "smembers",
    # unacknowledged messages (late acks): recorded on delivery, removed on ack, restored by a
    # sweep under a lock (SET NX PX; released by redis-py's Lua script: GET, DEL)
    "multi",
    "exec",
    "discard",
    "watch",
    "unwatch",
    "zadd",
    "zrem",
    "zrange",
    "hset",
    "hget",
    "hdel",
    "set",
    "get",
    "del",
    "evalsha",
    "script|load",
    # its terminals' byte lists
    "lpop",
    "expire",
    # push events
    "publish",
)


def user_name(slug: str) -> str:
    return f"agent-{slug}"


def keys(slug: str) -> list[str]:
    return [
        f"host.{slug}",
        f"_kombu.binding.host.{slug}",
        f"_kombu.binding_permanent.host.{slug}",
        f"unacked.host.{slug}",
        f"unacked_index.host.{slug}",
        f"unacked_mutex.host.{slug}",
        f"terminal:{slug}:*",
    ]


# redis-py announces itself with CLIENT SETINFO, which Redis has from 7.2 on (older ones: no such
# subcommand to allow).
NEWER_COMMANDS = ("client|setinfo",)


def rules(slug: str, password: str, newer: bool = True) -> list[str]:
    """ACL SETUSER arguments of ``slug``'s agent (everything else of the user reset)."""
    return [
        "reset",
        "on",
        f">{password}",
        *(f"~{key}" for key in keys(slug)),
        "&console:events",
        "-@all",
        *(f"+{command}" for command in COMMANDS),
        *(f"+{command}" for command in (NEWER_COMMANDS if newer else ())),
    ]


def new_password() -> str:
    return secrets.token_urlsafe(32)


def set_user(client, slug: str, password: str) -> None:  # client: redis.Redis (the admin's)
    import redis

    try:
        client.execute_command("ACL", "SETUSER", user_name(slug), *rules(slug, password))
    except redis.ResponseError as exc:
        if "Unknown command" not in str(exc):
            raise
        client.execute_command("ACL", "SETUSER", user_name(slug), *rules(slug, password, newer=False))


def disable_user(client, slug: str) -> None:
    """Credentials stop working at once: the user is switched off (new AUTH refused) and its open
    connections are closed."""
    name = user_name(slug)
    client.execute_command("ACL", "SETUSER", name, "off", "resetpass")
    client.execute_command("CLIENT", "KILL", "USER", name)


def persist(client) -> bool:
    """ACL SAVE: the users outlive a restart of Redis (it must run with ``aclfile``); False if
    this Redis has no ACL file (its users then last until it restarts)."""
    import redis

    try:
        client.execute_command("ACL", "SAVE")
    except redis.ResponseError:
        return False
    return True
