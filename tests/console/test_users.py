"""User management: superusers create, invite, deactivate, reactivate, reset and remove two-factor."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from console import user_services
from console.models import AuditEvent, PasswordLink, RoleBinding, Team
from console.operations import SYSTEM

pytestmark = pytest.mark.django_db
User = get_user_model()
GOOD_PASSWORD = "correct horse battery 42"


@pytest.fixture
def sue(client, superuser):
    client.force_login(superuser)
    return superuser


def link_token(response) -> str:
    """The token of the one-time link a page shows once."""
    found = re.search(r"/password/([A-Za-z0-9_-]{43})/", response.content.decode())
    assert found, "no one-time link on the page"
    return found.group(1)


def sessions_of(user) -> int:
    return sum(1 for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(user.pk))


def no_audit_row_contains(text: str) -> bool:
    return not any(
        text in json.dumps([e.target, e.params, e.before, e.after, e.message])
        for e in AuditEvent.objects.all()
    )


# --- creating and inviting -------------------------------------------------------------------


def test_a_superuser_creates_a_user_with_a_password_and_teams(client, sue):
    Team.objects.create(name="ops")
    response = client.post(
        reverse("user-create"),
        {
            "username": "bob",
            "email": "bob@example.org",
            "how": "password",
            "password1": GOOD_PASSWORD,
            "password2": GOOD_PASSWORD,
            "teams": ["ops"],
        },
    )
    bob = User.objects.get(username="bob")
    assert response.status_code == 302 and response["Location"] == reverse("user-detail", args=[bob.pk])
    assert bob.check_password(GOOD_PASSWORD) and bob.is_active and not bob.is_superuser
    assert list(bob.console_teams.values_list("name", flat=True)) == ["ops"]
    row = AuditEvent.objects.get(action="user.create")
    assert (row.actor, row.result, row.target) == (sue, "succeeded", "user bob")
    assert row.after["teams"] == ["ops"]
    assert no_audit_row_contains(GOOD_PASSWORD)
    assert Client().login(username="bob", password=GOOD_PASSWORD)


def test_an_invitation_makes_a_one_time_link_stored_only_as_a_hash(client, sue):
    response = client.post(reverse("user-create"), {"username": "carol", "how": "invite"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    token = link_token(response)
    carol = User.objects.get(username="carol")
    assert not carol.has_usable_password()
    link = PasswordLink.objects.get(user=carol)
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert not PasswordLink.objects.filter(token_hash=token).exists()
    assert timedelta(hours=71) < link.expires_at - timezone.now() <= timedelta(hours=72)
    assert (
        AuditEvent.objects.filter(action="user.invite", result="succeeded", target="user carol").count() == 1
    )
    assert no_audit_row_contains(token)
    # The page shows it once; the user's page does not show it again.
    assert token not in client.get(reverse("user-detail", args=[carol.pk])).content.decode()


def test_the_invited_user_sets_a_password_once_then_logs_in(client, sue):
    token = link_token(client.post(reverse("user-create"), {"username": "dan", "how": "invite"}))
    anon = Client()
    url = reverse("user-set-password", args=[token])
    page = anon.get(url)
    assert page.status_code == 200 and "dan" in page.content.decode()

    # Wrong values: the link stays usable and nothing is set.
    r = anon.post(url, {"new_password1": GOOD_PASSWORD, "new_password2": GOOD_PASSWORD + "x"})
    assert r.status_code == 400 and "the two passwords differ" in r.content.decode()
    r = anon.post(url, {"new_password1": "short", "new_password2": "short"})
    assert r.status_code == 400 and "too short" in r.content.decode()
    r = anon.post(url, {"new_password1": "", "new_password2": ""})
    assert r.status_code == 400 and "type a password" in r.content.decode()
    assert not User.objects.get(username="dan").has_usable_password()

    r = anon.post(url, {"new_password1": GOOD_PASSWORD, "new_password2": GOOD_PASSWORD})
    assert r.status_code == 302 and r["Location"] == reverse("login")
    assert Client().login(username="dan", password=GOOD_PASSWORD)
    rows = list(AuditEvent.objects.filter(action="user.password.set").values_list("result", "actor_name"))
    assert rows.count(("succeeded", "dan")) == 1 and rows.count(("refused", "dan")) == 3
    assert no_audit_row_contains(token)

    # Single use.
    r = anon.post(
        url, {"new_password1": "another long passphrase", "new_password2": "another long passphrase"}
    )
    assert r.status_code == 410 and "already used" in r.content.decode()
    assert anon.get(url).status_code == 410
    assert User.objects.get(username="dan").check_password(GOOD_PASSWORD)


def test_links_expire_and_a_newer_link_replaces_the_older(client, sue, settings):
    _, first = user_services.create_user(actor=sue, ctx=SYSTEM, username="erin")
    erin = User.objects.get(username="erin")
    second = user_services.reset_password(actor=sue, ctx=SYSTEM, user=erin)
    anon = Client()
    r = anon.get(first.path)
    assert r.status_code == 410 and "replaced" in r.content.decode()
    assert anon.get(second.path).status_code == 200
    PasswordLink.objects.filter(pk=second.link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    r = anon.post(second.path, {"new_password1": GOOD_PASSWORD, "new_password2": GOOD_PASSWORD})
    assert r.status_code == 410 and "expired" in r.content.decode()
    assert not User.objects.get(username="erin").has_usable_password()


@pytest.mark.parametrize("token", ["x" * 43, "short", "a" * 500, "é" * 43, "..", "a%0Ab"])
def test_unknown_links_are_404_and_audited_on_post(token):
    anon = Client()
    url = f"/password/{token}/"
    assert anon.get(url).status_code == 404
    r = anon.post(url, {"new_password1": GOOD_PASSWORD, "new_password2": GOOD_PASSWORD})
    assert r.status_code == 404 and "not valid" in r.content.decode()
    row = AuditEvent.objects.get(action="user.password.set")
    assert (row.result, row.target, row.actor) == ("refused", "password link", None)


def test_bad_create_input_is_refused_and_typed_values_come_back(client, sue):
    User.objects.create_user("taken")
    cases = [
        ({"username": "Taken", "how": "invite"}, "exists already"),
        ({"username": "bad name", "how": "invite"}, "a user name is 1-150 ASCII"),
        ({"username": "ok1", "email": "not-an-address", "how": "invite"}, "is not an e-mail address"),
        ({"username": "ok2", "how": "password", "password1": "", "password2": ""}, "Type the password"),
        ({"username": "ok3", "how": "password", "password1": "ok3ok3ok3ok3", "password2": "x"}, "differ"),
        (
            {
                "username": "ok4",
                "how": "password",
                "password1": "12345678901234",
                "password2": "12345678901234",
            },
            "numeric",
        ),
        ({"username": "ok5", "how": "invite", "teams": ["nope"]}, "nope"),
        ({"username": "ok6", "how": "root"}, "Select a valid choice"),
    ]
    for data, message in cases:
        response = client.post(reverse("user-create"), data)
        body = response.content.decode()
        assert response.status_code in (400, 409), (data, response.status_code)
        assert message in body, (data, body[:2000])
        assert f'value="{data["username"]}"' in body  # what was typed survives the refusal
    assert set(User.objects.values_list("username", flat=True)) == {"taken", "sue-superuser"}
    assert AuditEvent.objects.filter(result="refused").count() == len(cases)


# --- deactivating and reactivating -----------------------------------------------------------


def test_deactivation_needs_the_name_typed_and_ends_the_sessions_at_once(client, sue, make_user):
    bob = make_user("bob", role="view")
    bobs = [Client(), Client()]
    for c in bobs:
        assert c.login(username="bob", password="a-long-test-password")
        assert c.get(reverse("containers:list")).status_code == 200
    assert sessions_of(bob) == 2
    url = reverse("user-deactivate", args=[bob.pk])
    assert "Deactivate bob?" in client.get(url).content.decode()

    for typed in ["", "Bob", "bob2", "alice"]:
        r = client.post(url, {"confirm": typed})
        assert r.status_code == 400, typed
    bob.refresh_from_db()
    assert bob.is_active and sessions_of(bob) == 2

    r = client.post(url, {"confirm": "bob"})
    assert r.status_code == 302
    bob.refresh_from_db()
    assert not bob.is_active and sessions_of(bob) == 0
    for c in bobs:
        r = c.get(reverse("containers:list"))
        assert r.status_code == 302 and "/login/" in r["Location"]
    assert not Client().login(username="bob", password="a-long-test-password")
    row = AuditEvent.objects.get(action="user.deactivate", result="succeeded")
    assert row.after["sessions_ended"] == 2 and row.before["active"] is True
    assert AuditEvent.objects.filter(action="user.deactivate", result="refused").count() == 4


def test_a_deactivated_users_open_session_is_refused_even_if_its_row_survived(make_user):
    """Belt and braces: a session the deletion missed (another engine, a race) still stops working."""
    bob = make_user("bob", role="view")
    c = Client()
    c.force_login(bob)
    assert c.get(reverse("containers:list")).status_code == 200
    User.objects.filter(pk=bob.pk).update(is_active=False)
    r = c.get(reverse("containers:list"))
    assert r.status_code == 302 and "/login/" in r["Location"]
    assert c.post(reverse("account-totp-start")).status_code == 302
    assert not TOTPDevice.objects.exists()


def test_nobody_deactivates_themselves_or_the_last_active_superuser(client, sue, make_user):
    r = client.post(reverse("user-deactivate", args=[sue.pk]), {"confirm": sue.username})
    assert r.status_code == 409 and "cannot deactivate yourself" in r.content.decode()
    with pytest.raises(user_services.Conflict, match="last active superuser"):
        user_services.deactivate_user(actor=None, ctx=SYSTEM, user=sue)
    other = make_user("root2", role=None, superuser=True)
    # With two, one may go; then the other is the last one again.
    user_services.deactivate_user(actor=sue, ctx=SYSTEM, user=other)
    with pytest.raises(user_services.Conflict, match="last active superuser"):
        user_services.deactivate_user(actor=None, ctx=SYSTEM, user=sue)
    sue.refresh_from_db()
    assert sue.is_active
    assert AuditEvent.objects.filter(action="user.deactivate", result="refused").count() == 3


def test_reactivation_lets_the_user_log_in_again(client, sue, make_user):
    bob = make_user("bob", role="view")
    user_services.deactivate_user(actor=sue, ctx=SYSTEM, user=bob)
    r = client.post(reverse("user-reactivate", args=[bob.pk]))
    assert r.status_code == 302
    assert Client().login(username="bob", password="a-long-test-password")
    r = client.post(reverse("user-reactivate", args=[bob.pk]))
    assert r.status_code == 409 and "already active" in r.content.decode()
    assert list(AuditEvent.objects.filter(action="user.reactivate").values_list("result", flat=True)) == [
        "refused",
        "succeeded",
    ]


def test_a_deactivated_user_cannot_use_a_pending_link(sue):
    _, issued = user_services.create_user(actor=sue, ctx=SYSTEM, username="fay")
    fay = User.objects.get(username="fay")
    user_services.deactivate_user(actor=sue, ctx=SYSTEM, user=fay)
    user_services.reactivate_user(actor=sue, ctx=SYSTEM, user=fay)
    r = Client().post(issued.path, {"new_password1": GOOD_PASSWORD, "new_password2": GOOD_PASSWORD})
    assert r.status_code == 410  # withdrawn by the deactivation, not revived by the reactivation


# --- password reset and two-factor -----------------------------------------------------------


def test_a_reset_disables_the_password_ends_sessions_and_the_link_sets_a_new_one(client, sue, make_user):
    bob = make_user("bob", role="view")
    bobc = Client()
    bobc.force_login(bob)
    url = reverse("user-reset-password", args=[bob.pk])
    assert client.post(url, {"confirm": "nope"}).status_code == 400
    assert User.objects.get(pk=bob.pk).check_password("a-long-test-password")
    r = client.post(url, {"confirm": "bob"})
    assert r.status_code == 200 and r["Cache-Control"] == "no-store"
    token = link_token(r)
    assert not Client().login(username="bob", password="a-long-test-password")
    assert sessions_of(bob) == 0 and bobc.get(reverse("account")).status_code == 302
    r = Client().post(
        reverse("user-set-password", args=[token]),
        {"new_password1": GOOD_PASSWORD, "new_password2": GOOD_PASSWORD},
    )
    assert r.status_code == 302 and Client().login(username="bob", password=GOOD_PASSWORD)
    row = AuditEvent.objects.get(action="user.password.reset", result="succeeded")
    assert row.after["sessions_ended"] == 1 and row.actor == sue
    assert no_audit_row_contains(token)


def test_own_password_and_two_factor_are_changed_on_the_account_page_not_here(client, sue):
    for name in ("user-reset-password", "user-remove-2fa"):
        r = client.post(reverse(name, args=[sue.pk]), {"confirm": sue.username})
        assert r.status_code == 409 and "Account page" in r.content.decode()
    assert sue.has_usable_password()


def test_removing_two_factor_lets_the_user_log_in_without_a_code(client, sue, make_user):
    bob = make_user("bob", role="view")
    url = reverse("user-remove-2fa", args=[bob.pk])
    r = client.post(url, {"confirm": "bob"})
    assert r.status_code == 409 and "has no two-factor device" in r.content.decode()
    TOTPDevice.objects.create(user=bob, name="authenticator app", confirmed=True)
    assert (
        'Two-factor</dt><dd id="user-2fa">on'
        in client.get(reverse("user-detail", args=[bob.pk])).content.decode()
    )
    r = client.post(url, {"confirm": "bob"})
    assert r.status_code == 302
    assert not TOTPDevice.objects.filter(user=bob).exists()
    login = Client().post(reverse("login"), {"username": "bob", "password": "a-long-test-password"})
    assert login.status_code == 302
    row = AuditEvent.objects.get(action="user.totp.remove", result="succeeded")
    assert row.before == {"devices": [{"name": "authenticator app", "confirmed": True}]}


# --- pages -----------------------------------------------------------------------------------


def test_the_user_page_shows_teams_roles_and_last_login(client, sue, make_user, host):
    bob = make_user("bob", role="operate")
    extra = Team.objects.create(name="db-admins")
    extra.members.add(bob)
    RoleBinding.objects.create(team=extra, role="admin").hosts.set([host])
    User.objects.filter(pk=bob.pk).update(
        last_login=timezone.now().replace(year=2026, month=3, day=4, hour=5)
    )
    page = client.get(reverse("user-detail", args=[bob.pk])).content.decode()
    assert "team-bob" in page and "Operator</strong> on all hosts" in page
    assert "db-admins" in page and "Admin</strong> on <code>testhost</code>" in page
    assert "2026-03-04 05:" in page


def test_the_list_searches_filters_and_pages_in_a_fixed_number_of_queries(client, sue, settings):
    settings.PAGE_SIZE = 10
    team = Team.objects.create(name="ops")

    def make(n: int, prefix: str) -> None:
        for i in range(n):
            u = User.objects.create_user(f"{prefix}{i:02d}", email=f"{prefix}{i}@example.org")
            team.members.add(u)
            TOTPDevice.objects.create(user=u, name="d", confirmed=True)

    make(3, "few")
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("user-list")).status_code == 200
    make(30, "many")
    with CaptureQueriesContext(connection) as many:
        page = client.get(reverse("user-list")).content.decode()
    assert len(many) == len(few)
    assert "Page 1 of 4 (34 in all)" in page
    body = client.get(reverse("user-list"), {"q": "few01"}).content.decode()
    assert "few01" in body and "many" not in body and "few02" not in body
    User.objects.filter(username="many05").update(is_active=False)
    body = client.get(reverse("user-list"), {"status": "inactive"}).content.decode()
    assert "many05" in body and "few00" not in body
    assert "many29" in client.get(reverse("user-list"), {"page": "4"}).content.decode()


@pytest.mark.parametrize(
    "query",
    [
        {"page": "٣"},  # Arabic-Indic three: int() would take it
        {"page": "３"},
        {"page": "-1"},
        {"page": "1e3"},
        {"page": "9" * 30},
        {"q": "a\x00b"},
        {"q": "x" * 151},
        {"q": "a\nb"},
        {"status": "root"},
    ],
)
def test_bad_list_parameters_are_a_400_with_a_message(client, sue, query):
    r = client.get(reverse("user-list"), query)
    assert r.status_code == 400
    assert 'class="alert error"' in r.content.decode()


def test_only_superusers_see_the_users_link(client, make_user, superuser):
    client.force_login(make_user("plain", role="admin"))
    assert reverse("user-list") not in client.get(reverse("account")).content.decode()
    client.force_login(superuser)
    assert f'href="{reverse("user-list")}"' in client.get(reverse("account")).content.decode()


def test_the_user_page_reads_in_a_fixed_number_of_queries(client, sue, make_user, host):
    bob = make_user("bob", role="view")

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("user-detail", args=[bob.pk])).status_code == 200
        return len(ctx)

    one_team = queries()
    for i in range(6):
        team = Team.objects.create(name=f"extra-{i}")
        team.members.add(bob)
        RoleBinding.objects.create(team=team, role="operate").hosts.set([host])
        user_services.reset_password(actor=sue, ctx=SYSTEM, user=bob)
    assert queries() == one_team


@pytest.mark.django_db(transaction=True)
def test_two_requests_racing_with_one_link_set_one_password(superuser):
    """Both pass the first check; the conditional update lets exactly one of them spend the link."""
    import threading

    from django.db import connections

    _, issued = user_services.create_user(actor=superuser, ctx=SYSTEM, username="gina")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def use(password: str) -> None:
        barrier.wait()
        try:
            user_services.set_password_with_link(
                ctx=SYSTEM, token=issued.token, password=password, password_again=password
            )
            outcomes.append(password)
        except user_services.ServiceError as exc:
            outcomes.append(exc.message)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=use, args=(p,)) for p in ("first passphrase 1", "second passphrase 2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [o for o in outcomes if o.endswith("passphrase 1") or o.endswith("passphrase 2")]
    assert len(outcomes) == 2 and len(winners) == 1, outcomes
    assert User.objects.get(username="gina").check_password(winners[0])
    assert AuditEvent.objects.filter(action="user.password.set", result="succeeded").count() == 1


@pytest.mark.parametrize(
    "data",
    [
        {"new_password1": "a\x00" * 8, "new_password2": "a\x00" * 8},
        {"new_password1": "x" * 2000, "new_password2": "x" * 2000},
        {"new_password1": "fine passphrase 1", "new_password2": "other"},
        {},
    ],
)
def test_a_refused_password_never_puts_the_links_token_in_the_audit_trail(sue, data):
    """Whatever refuses the POST (the service, or a guard before the view), the row must not hold
    the token: it is in the URL, and a row naming it would be a usable link kept in the trail."""
    _, issued = user_services.create_user(actor=sue, ctx=SYSTEM, username="hank")
    before = AuditEvent.objects.count()
    r = Client().post(issued.path, data)
    assert r.status_code == 400
    assert AuditEvent.objects.count() == before + 1
    assert no_audit_row_contains(issued.token)
    assert Client().get(issued.path).status_code == 200  # still usable


def test_a_user_locked_out_by_wrong_passwords_logs_in_after_setting_one_by_link(client, sue):
    from tests.security.conftest import post_login

    user = User.objects.create_user("ivy", password="forgotten long password")
    for _ in range(5):
        post_login(Client(), "ivy", "wrong guess 123456", ip="192.0.2.40")
    assert post_login(Client(), "ivy", "forgotten long password", ip="192.0.2.40").status_code == 429
    issued = user_services.reset_password(actor=sue, ctx=SYSTEM, user=user)
    r = Client().post(issued.path, {"new_password1": GOOD_PASSWORD, "new_password2": GOOD_PASSWORD})
    assert r.status_code == 302
    assert post_login(Client(), "ivy", GOOD_PASSWORD, ip="192.0.2.40").status_code == 302
    row = AuditEvent.objects.get(action="user.password.set", result="succeeded")
    assert row.after["login_failures_cleared"] >= 1
