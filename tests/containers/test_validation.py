"""Names and LXC paths end up in argv and on disk: only safe values get through."""

from __future__ import annotations

import pytest

from console.errors import InvalidInput, ServiceError
from console.identifiers import validate_container_name
from containers.validators import validate_lxc_path

REQUIRED = "a container name is required"
TOO_LONG = "at most 63 characters"
BAD_START = "must not start with '-' or '.'"
BAD_CHARS = "may contain only letters, digits, '-', '_' and '.'"


@pytest.mark.parametrize("name", ["web1", "a", "a" * 63, "db_2.prod-x", "_x", "9lives", "A.b-C_d", "x.."])
def test_good_names_are_returned_unchanged(name):
    assert validate_container_name(name) == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("web;reboot", BAD_CHARS),
        ("web; rm -rf /", BAD_CHARS),
        ("a|b", BAD_CHARS),
        ("a&b", BAD_CHARS),
        ("a&&b", BAD_CHARS),
        ("$(reboot)", BAD_CHARS),
        ("a$(id)", BAD_CHARS),
        ("a$HOME", BAD_CHARS),
        ("`id`", BAD_CHARS),
        ("a`id`", BAD_CHARS),
        ("a>b", BAD_CHARS),
        ("a<b", BAD_CHARS),
        ("a b", BAD_CHARS),
        ("web ", BAD_CHARS),
        (" web", BAD_CHARS),
        ("a\nb", BAD_CHARS),
        ("\nweb", BAD_CHARS),
        ("a\tb", BAD_CHARS),
        ("a\rb", BAD_CHARS),
        ("-rf", BAD_START),
        ("--help", BAD_START),
        ("-", BAD_START),
        (".hidden", BAD_START),
        (".", BAD_START),
        ("..", BAD_START),
        ("a/b", BAD_CHARS),
        ("/", BAD_CHARS),
        ("../etc", BAD_START),
        ("web/../../etc", BAD_CHARS),
        ("a\x00b", BAD_CHARS),
        ("\x00", BAD_CHARS),
        ("café", BAD_CHARS),
        ("容器", BAD_CHARS),
        ("web\u200b", BAD_CHARS),
        ("a'b", BAD_CHARS),
        ('a"b', BAD_CHARS),
        ("a\\b", BAD_CHARS),
        ("a*", BAD_CHARS),
        ("a?", BAD_CHARS),
        ("a:b", BAD_CHARS),
        ("a=b", BAD_CHARS),
        ("a,b", BAD_CHARS),
        ("a#b", BAD_CHARS),
        ("~root", BAD_CHARS),
        ("a{b,c}", BAD_CHARS),
        ("a" * 64, TOO_LONG),
        ("a" * 1000, TOO_LONG),
        ("", REQUIRED),
        (None, REQUIRED),
        (42, REQUIRED),
        (b"web1", REQUIRED),
        (["web1"], REQUIRED),
    ],
)
def test_bad_names_are_refused_with_a_clear_message(name, fragment):
    with pytest.raises(InvalidInput) as info:
        validate_container_name(name)
    exc = info.value
    assert isinstance(exc, ServiceError)
    assert exc.status_code == 400
    assert exc.field == "name"
    assert fragment in exc.message


def test_too_long_message_says_how_long_the_name_is():
    with pytest.raises(InvalidInput, match=r"this one has 64"):
        validate_container_name("a" * 64)


def test_trailing_newline_is_refused():
    with pytest.raises(InvalidInput):
        validate_container_name("web1\n")


# --- LXC paths ----------------------------------------------------------------------------------

ALLOWED = ["/var/lib/lxc", "/srv/pool1/"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/var/lib/lxc", "/var/lib/lxc"),
        ("/var/lib/lxc/", "/var/lib/lxc"),
        ("/var/lib//lxc", "/var/lib/lxc"),
        ("/var/lib/./lxc", "/var/lib/lxc"),
        ("/var/lib/lxc/x/..", "/var/lib/lxc"),
        ("/srv/pool1", "/srv/pool1"),
        ("/srv/pool1/", "/srv/pool1"),
    ],
)
def test_declared_paths_are_accepted_and_normalised(value, expected):
    assert validate_lxc_path(value, ALLOWED) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("var/lib/lxc", "must be an absolute path"),
        ("./var/lib/lxc", "must be an absolute path"),
        ("~/lxc", "must be an absolute path"),
        ("/var/lib/lxc\x00", "must be an absolute path"),
        ("/var/lib/lxc\x00/../../etc", "must be an absolute path"),
        ("/var/lib/lxc/../../etc", "unknown LXC path"),
        ("/var/lib/lxc/..", "unknown LXC path"),
        ("/etc", "unknown LXC path"),
        ("/", "unknown LXC path"),
        ("/var/lib", "unknown LXC path"),
        ("/var/lib/lxc/web1", "unknown LXC path"),
        ("/var/lib/lxc2", "unknown LXC path"),
        ("/srv/pool", "unknown LXC path"),
        ("", "an LXC path is required"),
        (None, "an LXC path is required"),
        (7, "an LXC path is required"),
    ],
)
def test_other_paths_are_refused(value, fragment):
    with pytest.raises(InvalidInput) as info:
        validate_lxc_path(value, ALLOWED)
    assert info.value.field == "lxc_path"
    assert fragment in info.value.message


def test_unknown_path_message_lists_the_hosts_paths():
    with pytest.raises(InvalidInput) as info:
        validate_lxc_path("/opt/lxc", ["/var/lib/lxc", "/srv/pool1"])
    assert info.value.message == "unknown LXC path '/opt/lxc'; this host has: /var/lib/lxc, /srv/pool1"


def test_no_declared_paths_means_nothing_is_accepted():
    with pytest.raises(InvalidInput):
        validate_lxc_path("/var/lib/lxc", [])
