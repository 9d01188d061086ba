"""The file browser: reads are POSTs; a GET only shows one of the user's own reads."""

from __future__ import annotations

from django.urls import reverse

from console.models import AuditEvent, Operation


def test_file_browser_post_queues_a_read_and_redirects_to_it(client, admin, operator, make_container):
    c = make_container(state="RUNNING", pid=4242)
    client.force_login(admin)
    url = reverse("containers:files", args=[c.pk])
    answer = client.post(url, {"path": "/srv/x&download=1"})
    op = Operation.objects.get(kind="container.files.list")
    assert answer.status_code == 303 and op.params["path"] == "/srv/x&download=1"
    assert answer["Location"] == f"{url}?path=%2Fsrv%2Fx%26download%3D1&op={op.pk}"
    assert AuditEvent.objects.filter(action="container.files.list", result="accepted", actor=admin).exists()
    shown = client.get(answer["Location"]).content.decode()
    assert "/srv/x&amp;download=1" in shown and f"/files/result/{op.pk}/" in shown

    client.post(url, {"file": "/etc/hosts"})
    assert Operation.objects.get(kind="container.files.read").params["path"] == "/etc/hosts"

    # Another user's read, another container's, or a malformed id: not shown.
    client.force_login(operator)
    assert client.get(url, {"op": op.pk}).status_code == 404
    client.force_login(admin)
    other = make_container(name="web2", state="RUNNING", pid=4343)
    assert client.get(reverse("containers:files", args=[other.pk]), {"op": op.pk}).status_code == 404
    for bad in ("x", "١", "-1", "9" * 30):
        assert client.get(url, {"op": bad}).status_code == 404
    assert Operation.objects.count() == 2
