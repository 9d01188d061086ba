"""`manage.py users`: the Users pages' actions for scripts, audited as "system" via manage.py."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from console.models import AuditEvent, PasswordLink, Team

pytestmark = pytest.mark.django_db
User = get_user_model()
PASSWORD = "correct horse battery 42"


def users(*args: str, stdin: str | None = None, monkeypatch=None) -> str:
    out = io.StringIO()
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    call_command("users", *args, stdout=out)
    return out.getvalue()


def link_in(output: str) -> str:
    found = re.search(r"^(http\S+/password/[A-Za-z0-9_-]{43}/)$", output, re.M)
    assert found, output
    return found.group(1)


def test_invite_prints_a_link_that_sets_the_password(settings):
    settings.CONSOLE_BASE_URL = "https://console.example.org/"
    Team.objects.create(name="ops")
    out = users("invite", "bob", "--email", "bob@example.org", "--team", "ops")
    url = link_in(out)
    assert url.startswith("https://console.example.org/password/")
    bob = User.objects.get(username="bob")
    assert not bob.has_usable_password() and list(bob.console_teams.values_list("name", flat=True)) == ["ops"]
    path = url.removeprefix("https://console.example.org")
    r = Client().post(path, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert r.status_code == 302 and Client().login(username="bob", password=PASSWORD)
    row = AuditEvent.objects.get(action="user.invite")
    assert (row.actor, row.actor_name, row.params["via"]) == (None, "system", "manage.py")


def test_create_reads_the_password_from_stdin_only(monkeypatch):
    out = users("create", "carol", "--password-stdin", stdin=PASSWORD + "\n", monkeypatch=monkeypatch)
    assert "created user carol" in out and "password/" not in out
    assert Client().login(username="carol", password=PASSWORD)
    assert PASSWORD not in json.dumps(list(AuditEvent.objects.values("params", "after")), default=str)
    with pytest.raises(CommandError, match="too short"):
        users("create", "dave", "--password-stdin", stdin="short\n", monkeypatch=monkeypatch)
    assert not User.objects.filter(username="dave").exists()
    # No such option: a password never goes on the command line (ps would show it).
    with pytest.raises(CommandError, match="unrecognized arguments: --password"):
        users("create", "erin", "--password", PASSWORD)


def test_deactivate_reactivate_reset_and_remove_2fa(make_user):
    make_user("root", role=None, superuser=True)
    bob = make_user("bob", role="view")
    c = Client()
    c.force_login(bob)
    TOTPDevice.objects.create(user=bob, name="app", confirmed=True)

    assert "deactivated bob (1 session(s) ended)" in users("deactivate", "bob")
    assert c.get("/containers/").status_code == 302
    with pytest.raises(CommandError, match="already deactivated"):
        users("deactivate", "bob")
    with pytest.raises(CommandError, match="deactivated: reactivate them first"):
        users("reset-password", "bob")
    assert "reactivated bob" in users("reactivate", "bob")

    out = users("reset-password", "bob")
    assert "password of bob disabled" in out and link_in(out)
    assert not User.objects.get(username="bob").has_usable_password()
    assert PasswordLink.objects.filter(user=bob, purpose="reset").count() == 1

    assert "removed 1 two-factor device(s) of bob" in users("remove-2fa", "bob")
    with pytest.raises(CommandError, match="has no two-factor device"):
        users("remove-2fa", "bob")
    actions = list(AuditEvent.objects.order_by("pk").values_list("action", "result"))
    assert actions == [
        ("user.deactivate", "succeeded"),
        ("user.deactivate", "refused"),
        ("user.password.reset", "refused"),
        ("user.reactivate", "succeeded"),
        ("user.password.reset", "succeeded"),
        ("user.totp.remove", "succeeded"),
        ("user.totp.remove", "refused"),
    ]


def test_the_last_active_superuser_stays_and_unknown_names_are_clear_errors(make_user):
    make_user("root", role=None, superuser=True)
    with pytest.raises(CommandError, match="last active superuser"):
        users("deactivate", "root")
    assert User.objects.get(username="root").is_active
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        users("deactivate", "nobody")
    for bad in ["bad name", "a\x00b", "٣٣", "x" * 151, "bob\n"]:
        with pytest.raises(CommandError, match="a user name is"):
            users("invite", bad)
    with pytest.raises(CommandError, match="unknown team"):
        users("invite", "okname", "--team", "nope")
    assert set(User.objects.values_list("username", flat=True)) == {"root"}


def test_list_as_a_table_and_as_json(make_user):
    make_user("bob", role="view")
    make_user("root", role=None, superuser=True)
    User.objects.filter(username="bob").update(is_active=False)
    table = users("list")
    assert re.search(r"^bob\s+no\s", table, re.M) and re.search(r"^root\s+yes\s+yes", table, re.M)
    data = json.loads(users("list", "--json", "--status", "inactive"))
    assert [u["username"] for u in data["users"]] == ["bob"]
    assert data["users"][0]["teams"] == ["team-bob"] and data["users"][0]["last_login"] is None
    assert [u["username"] for u in json.loads(users("list", "--json", "--search", "roo"))["users"]] == [
        "root"
    ]
