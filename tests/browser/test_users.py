"""The Users pages as a superuser clicks them, and an invitation used in another browser."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from console.models import AuditEvent, Team

pytestmark = [pytest.mark.browser]
User = get_user_model()
ROOT_PASSWORD = "browser-root-password"
NEW_PASSWORD = "a fresh passphrase 42"


def log_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{base}/containers/")


def refused_by_the_browser(page, selector: str) -> bool:
    """An empty required field: the browser keeps the form and says why."""
    return page.eval_on_selector(selector, "e => !e.validity.valid && e.validationMessage.length > 0")


@pytest.fixture
def root(make_user):
    return make_user("browser-root", role=None, superuser=True, password=ROOT_PASSWORD)


def test_invite_then_the_link_in_a_fresh_browser_sets_the_password_and_logs_in(
    browser, page, live_server, root
):
    base = live_server.url
    Team.objects.create(name="ops")
    log_in(page, base, "browser-root", ROOT_PASSWORD)
    page.click("nav >> text=Users")
    page.wait_for_url(f"{base}/users/")
    page.click("text=New user")

    # Untouched: the browser refuses the empty user name; nothing reaches the console.
    page.click("button:has-text('Create')")
    assert refused_by_the_browser(page, "input[name=username]")
    assert page.url == f"{base}/users/new/"

    # One wrong value: the console refuses it, and what was typed is still there.
    page.fill("input[name=username]", "new user")
    page.fill("input[name=email]", "newbie@example.org")
    page.check("input[name=teams][value=ops]")
    page.click("button:has-text('Create')")
    assert "a user name is 1-150 ASCII" in page.inner_text(".field-error")
    assert page.input_value("input[name=username]") == "new user"
    assert page.input_value("input[name=email]") == "newbie@example.org"
    assert page.is_checked("input[name=teams][value=ops]")
    assert not User.objects.filter(email="newbie@example.org").exists()

    # One change: a valid name. The page shows the link once.
    page.fill("input[name=username]", "newbie")
    page.click("button:has-text('Create')")
    url = page.inner_text("#password-link")
    assert re.fullmatch(re.escape(base) + r"/password/[A-Za-z0-9_-]{43}/", url)
    newbie = User.objects.get(username="newbie")
    assert not newbie.has_usable_password()
    assert list(newbie.console_teams.values_list("name", flat=True)) == ["ops"]

    # The invited person, in a browser that shares nothing with the superuser's.
    context = browser.new_context()
    guest = context.new_page()
    try:
        guest.goto(url)
        assert "For the user newbie" in guest.inner_text("main")
        guest.click("button:has-text('Set password')")
        assert refused_by_the_browser(guest, "input[name=new_password1]")
        guest.fill("input[name=new_password1]", NEW_PASSWORD)
        guest.fill("input[name=new_password2]", NEW_PASSWORD + "!")
        guest.click("button:has-text('Set password')")
        assert "the two passwords differ" in guest.inner_text(".field-error")
        guest.fill("input[name=new_password1]", NEW_PASSWORD)
        guest.fill("input[name=new_password2]", NEW_PASSWORD)
        guest.click("button:has-text('Set password')")
        guest.wait_for_url(f"{base}/login/")
        assert "Your password is set" in guest.inner_text(".messages")
        log_in(guest, base, "newbie", NEW_PASSWORD)
        assert guest.inner_text(".userbox a") == "newbie"
        assert "Users" not in guest.inner_text("nav")
        # The link worked once.
        guest.goto(url)
        assert "already used" in guest.inner_text(".alert.error")
    finally:
        context.close()

    # The superuser's list shows the new user with their team and last login.
    page.goto(f"{base}/users/")
    page.fill("input[type=search]", "newb")
    page.locator("#user-rows", has_text="newbie").wait_for()
    row = page.inner_text("#user-rows")
    assert "ops" in row and "never" not in row.split("newbie", 1)[1].split("\n", 1)[0]
    results = set(AuditEvent.objects.filter(target="user newbie").values_list("action", "result"))
    assert results == {
        ("user.invite", "succeeded"),
        ("user.password.set", "refused"),
        ("user.password.set", "succeeded"),
    }


def test_deactivate_ends_an_open_session_then_reactivate(browser, page, live_server, root, make_user):
    base = live_server.url
    make_user("bob", role="view", password=NEW_PASSWORD)
    bob_context = browser.new_context()
    bob_page = bob_context.new_page()
    try:
        log_in(bob_page, base, "bob", NEW_PASSWORD)
        log_in(page, base, "browser-root", ROOT_PASSWORD)
        page.goto(f"{base}/users/")
        page.click("#user-rows >> text=bob")
        page.click("text=Deactivate…")
        assert "Deactivate bob?" in page.inner_text("h1")

        page.click("button:has-text('Deactivate')")
        assert refused_by_the_browser(page, "input[name=confirm]")
        page.fill("input[name=confirm]", "Bob")
        page.click("button:has-text('Deactivate')")
        assert "Type bob exactly to confirm" in page.inner_text(".field-error")
        assert page.input_value("input[name=confirm]") == "Bob"
        assert User.objects.get(username="bob").is_active

        page.fill("input[name=confirm]", "bob")
        page.click("button:has-text('Deactivate')")
        assert "bob is deactivated (1 open session(s) ended)" in page.inner_text(".messages")
        assert page.inner_text("#user-status") == "deactivated"
        bob_page.reload()
        assert "/login/" in bob_page.url

        page.click("button:has-text('Reactivate')")
        assert "bob is active again" in page.inner_text(".messages")
        log_in(bob_page, base, "bob", NEW_PASSWORD)

        # Nobody deactivates themselves: a clear refusal.
        page.goto(f"{base}/users/{root.pk}/deactivate/")
        page.fill("input[name=confirm]", "browser-root")
        page.click("button:has-text('Deactivate')")
        assert "you cannot deactivate yourself" in page.inner_text(".alert.error")
    finally:
        bob_context.close()


def test_reset_password_and_remove_two_factor(browser, page, live_server, root, make_user):
    base = live_server.url
    bob = make_user("bob", role="view", password=NEW_PASSWORD)
    TOTPDevice.objects.create(user=bob, name="authenticator app", confirmed=True)
    log_in(page, base, "browser-root", ROOT_PASSWORD)
    page.goto(f"{base}/users/{bob.pk}/")
    assert page.inner_text("#user-2fa") == "on"

    page.click("text=Remove two-factor…")
    page.click("button:has-text('Remove')")
    assert refused_by_the_browser(page, "input[name=confirm]")
    page.fill("input[name=confirm]", "alice")
    page.click("button:has-text('Remove')")
    assert "Type bob exactly" in page.inner_text(".field-error")
    assert page.input_value("input[name=confirm]") == "alice"
    page.fill("input[name=confirm]", "bob")
    page.click("button:has-text('Remove')")
    assert "Two-factor authentication of bob removed" in page.inner_text(".messages")
    assert page.inner_text("#user-2fa") == "off"
    assert not TOTPDevice.objects.filter(user=bob).exists()

    page.click("text=Reset password…")
    page.click("button:has-text('Reset')")
    assert refused_by_the_browser(page, "input[name=confirm]")
    page.fill("input[name=confirm]", "bob2")
    page.click("button:has-text('Reset')")
    assert "Type bob exactly" in page.inner_text(".field-error")
    assert page.input_value("input[name=confirm]") == "bob2"
    page.fill("input[name=confirm]", "bob")
    page.click("button:has-text('Reset')")
    url = page.inner_text("#password-link")
    bob.refresh_from_db()
    assert not bob.has_usable_password()

    context = browser.new_context()
    guest = context.new_page()
    try:
        guest.goto(url)
        guest.fill("input[name=new_password1]", "12345678901234")
        guest.fill("input[name=new_password2]", "12345678901234")
        guest.click("button:has-text('Set password')")
        assert "entirely numeric" in guest.inner_text(".field-error")
        guest.fill("input[name=new_password1]", "another good passphrase")
        guest.fill("input[name=new_password2]", "another good passphrase")
        guest.click("button:has-text('Set password')")
        guest.wait_for_url(f"{base}/login/")
        log_in(guest, base, "bob", "another good passphrase")
    finally:
        context.close()


def test_the_user_list_searches_filters_and_pages(page, live_server, root, settings):
    settings.PAGE_SIZE = 5
    base = live_server.url
    for i in range(7):
        User.objects.create_user(f"member{i}", email=f"m{i}@example.org")
    User.objects.filter(username="member3").update(is_active=False)
    log_in(page, base, "browser-root", ROOT_PASSWORD)
    page.goto(f"{base}/users/")

    # Untouched: every user, a page at a time.
    page.click("button:has-text('Search')")
    assert "Page 1 of 2 (8 in all)" in page.inner_text("#user-rows")
    page.click("text=Next")
    assert "member6" in page.inner_text("#user-rows")

    # One change: the rows follow as one types; the status filter narrows them.
    page.goto(f"{base}/users/")
    page.fill("input[type=search]", "member")
    page.locator("#user-rows", has_text="7 in all").wait_for()
    page.select_option("select[name=status]", "inactive")
    # (no wait_for_function: the page's CSP refuses evaluated strings, as it should)
    expect(page.locator("#user-rows tbody tr")).to_have_count(1)
    assert "member3" in page.inner_text("#user-rows") and "deactivated" in page.inner_text("#user-rows")

    # A search nothing matches says so, and keeps what was typed.
    page.fill("input[type=search]", "nobody-like-this")
    page.click("button:has-text('Search')")
    assert "No users match these filters" in page.inner_text("#user-rows")
    assert page.input_value("input[type=search]") == "nobody-like-this"
