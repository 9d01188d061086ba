"""The client address rule (console.middleware.client_address): uvicorn's, with parsing on top."""

from __future__ import annotations

import pytest

from console.middleware import client_address

HOSTILE = '=HYPERLINK("http://evil.example/x")'


@pytest.mark.parametrize(
    "trusted, peer, forwarded, expected",
    [
        # Nobody trusted (the default): the peer, whatever the header says.
        ([], "127.0.0.1", "203.0.113.5", "127.0.0.1"),
        ([], "127.0.0.1", HOSTILE, "127.0.0.1"),
        ([], HOSTILE, None, None),
        ([], "", None, None),
        ([], "::1", None, "::1"),
        # A listed proxy: the rightmost entry that is not a listed proxy.
        (["10.0.0.0/8"], "10.1.1.1", "203.0.113.5", "203.0.113.5"),
        (["10.0.0.0/8"], "10.1.1.1", "198.51.100.1, 203.0.113.5, 10.2.2.2", "203.0.113.5"),
        (["10.0.0.0/8"], "10.1.1.1", "10.3.3.3, 10.2.2.2", "10.3.3.3"),
        (["10.0.0.0/8"], "10.1.1.1", "203.0.113.5:8080", "203.0.113.5"),
        (["10.0.0.0/8"], "10.1.1.1", "[2001:db8::1]:443", "2001:db8::1"),
        (["10.0.0.0/8"], "10.1.1.1", None, "10.1.1.1"),
        (["10.0.0.0/8"], "10.1.1.1", HOSTILE, None),
        (["10.0.0.0/8"], "10.1.1.1", "unknown, 10.2.2.2", None),
        (["10.0.0.0/8"], "10.1.1.1", "\u0661.2.3.4", None),
        # Not from a listed proxy: the header is not read at all.
        (["10.0.0.0/8"], "192.0.2.1", "203.0.113.5", "192.0.2.1"),
        # uvicorn already rewrote the peer to the forwarded client: the same answer.
        (["10.0.0.0/8"], "203.0.113.5", "203.0.113.5", "203.0.113.5"),
    ],
)
def test_client_address(settings, trusted, peer, forwarded, expected):
    settings.TRUSTED_PROXIES = trusted
    assert client_address(peer, forwarded) == expected
