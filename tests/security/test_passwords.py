"""Django's password validators are on: short, common, numeric and look-alike passwords are refused."""

from __future__ import annotations

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse

from console.models import AuditEvent
from tests.security.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Sh0rt!pw", "too short"),
        ("password1234", "too common"),
        ("839201748392017", "entirely numeric"),
    ],
)
def test_weak_passwords_are_refused(password, message):
    with pytest.raises(ValidationError) as exc:
        validate_password(password)
    assert any(message in m for m in exc.value.messages), exc.value.messages


def test_a_password_like_the_user_name_is_refused(make_user):
    user = make_user("margaret-hamilton")
    with pytest.raises(ValidationError, match="too similar"):
        validate_password("margaret-hamilton1", user)


def test_a_good_password_passes(make_user):
    validate_password("correct horse battery staple", make_user("eve"))


def test_the_password_page_applies_them(client, make_user):
    user = make_user("frank", password=PASSWORD)
    client.force_login(user)
    response = client.post(
        reverse("account-password"),
        {"old_password": PASSWORD, "new_password1": "password1234", "new_password2": "password1234"},
    )
    assert response.status_code == 400
    assert "too common" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)

    new = "correct horse battery staple"
    response = client.post(
        reverse("account-password"), {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)
    assert (
        AuditEvent.objects.filter(action="account.password.change", actor=user, result="succeeded").count()
        == 1
    )
    assert client.get(reverse("account")).status_code == 200  # still logged in
