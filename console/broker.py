"""The broker transport of the console's Celery app: kombu's Redis transport, except that losing
the connection never ends an agent.

kombu 5.7's worker, when the connection to Redis is lost while it holds messages it has not
acknowledged (an operation running: its wake-up is acknowledged when it ends), closes the broken
connection and then, closing its channel a second time, tries to restore those messages through a
transport whose client is already gone: ``AttributeError: 'NoneType' object has no attribute
'hostname'``, which Celery reports as an "Unrecoverable error" and the agent exits instead of
reconnecting. Here a channel that has lost its connection restores nothing: the messages stay in
Redis's unacknowledged set and come back after the visibility timeout, and nothing waits for them,
since the agent claims pending operations from the database anyway (``console.agent``) and a late
wake-up runs nothing (``console.tasks.run_operation``).

Selected by ``CELERY_BROKER_TRANSPORT`` (console.settings); the URL stays ``redis://...``.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis


class QoS(redis.QoS):
    def restore_unacked(self, client: Any = None) -> Any:
        if client is None and self.channel.connection.client is None:
            if self._delivered is not None:
                self._delivered.clear()
            return None
        return super().restore_unacked(client)


class Channel(redis.Channel):
    QoS = QoS


class Transport(redis.Transport):
    Channel = Channel
