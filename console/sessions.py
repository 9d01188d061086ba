"""Django's database sessions, with the cookie's key checked before it reaches a query.

Django only checks that a session key is 8 characters or more; whatever else a client puts in the
cookie (a NUL character, via an octal escape in a quoted cookie value) went into the lookup on
``django_session``, and PostgreSQL fails such a query (HTTP 500). Keys Django makes are lowercase
letters and digits; a cookie with anything else names no session, so the request is anonymous.
"""

from __future__ import annotations

from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

_KEY_CHARS = frozenset(VALID_KEY_CHARS)


class SessionStore(DatabaseSessionStore):
    def _validate_session_key(self, key: str | None) -> bool:
        valid = super()._validate_session_key(key)  # type: ignore[misc]  # the stubs lack this method
        return bool(valid) and set(key or "") <= _KEY_CHARS
