"""Destructive plain forms ask before they post (static/js/confirm.js, data-confirm), as htmx forms
do with hx-confirm: dismissing changes nothing, accepting does it. Shown on the team page."""

from __future__ import annotations

import pytest

from console.models import AuditEvent, Team
from tests.browser.helpers import PASSWORD, login

pytestmark = [pytest.mark.browser]


def test_removing_a_team_member_asks_first(page, live_server, make_user):
    make_user("conf-root", role=None, superuser=True, password=PASSWORD)
    member = make_user("conf-member", role=None)
    team = Team.objects.create(name="night-shift")
    team.members.add(member)
    login(page, live_server.url, "conf-root")
    page.goto(f"{live_server.url}/teams/{team.pk}/")
    questions: list[str] = []

    def answer(accept: bool):
        def handle(dialog):
            questions.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return handle

    page.once("dialog", answer(False))
    page.get_by_role("button", name="Remove", exact=True).click()
    page.wait_for_timeout(500)
    assert questions == ["Remove conf-member from the team night-shift? They lose the roles the team gives."]
    assert list(team.members.values_list("username", flat=True)) == ["conf-member"]
    assert not AuditEvent.objects.filter(action="team.member.remove").exists()

    page.once("dialog", answer(True))
    with page.expect_navigation():
        page.get_by_role("button", name="Remove", exact=True).click()
    assert not team.members.exists()
    assert AuditEvent.objects.filter(action="team.member.remove", result="succeeded").count() == 1
