"""Every console page needs a login; home is the container list."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.urls import reverse


@pytest.mark.parametrize(
    "url",
    [
        lambda op: reverse("operation-list"),
        lambda op: reverse("operation-detail", args=[op.pk]),
        lambda op: reverse("operation-card", args=[op.pk]),
        lambda op: reverse("audit-list"),
        lambda op: reverse("host-list"),
        lambda op: reverse("host-detail", args=["testhost"]),
        lambda op: reverse("storage:index"),
        lambda op: reverse("networks:index"),
    ],
    ids=["operations", "operation", "card", "audit", "hosts", "host", "storage", "networks"],
)
def test_anonymous_users_are_sent_to_the_login_page(client, op, url):
    path = url(op)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={quote(path)}"


def test_home_redirects_to_the_container_list(client, admin):
    client.force_login(admin)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == reverse("containers:list")
