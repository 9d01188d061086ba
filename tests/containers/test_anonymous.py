"""Container pages without a login: sent to the login page, nothing queued."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.urls import reverse

from console.models import AuditEvent, Operation


@pytest.mark.parametrize(
    "url",
    [
        lambda c: reverse("containers:list"),
        lambda c: reverse("containers:detail", args=[c.pk]),
        lambda c: reverse("containers:create"),
        lambda c: reverse("containers:destroy", args=[c.pk]),
    ],
    ids=["list", "detail", "create", "destroy"],
)
def test_anonymous_users_are_sent_to_the_login_page(client, make_container, url):
    path = url(make_container())
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={quote(path)}"


@pytest.mark.parametrize("action", ["start", "stop"])
def test_anonymous_post_of_an_action_queues_nothing(client, make_container, action):
    container = make_container(state="RUNNING" if action == "stop" else "STOPPED")
    response = client.post(reverse("containers:action", args=[container.pk, action]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert Operation.objects.count() == 0
    assert AuditEvent.objects.count() == 0


def test_anonymous_post_to_create_or_destroy_queues_nothing(client, host, make_container):
    container = make_container()
    client.post(reverse("containers:create"), {"host": "testhost", "name": "web9", "template": "busybox"})
    client.post(reverse("containers:destroy", args=[container.pk]), {"confirm": "web1"})
    assert Operation.objects.count() == 0
