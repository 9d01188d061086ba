"""A container's limits page: saved and live sizes, removing a saved limit."""

from __future__ import annotations

import re

from django.urls import reverse

from console.models import AuditEvent, Operation


def test_limits_show_saved_and_live_sizes_in_the_same_unit(client, admin, make_container):
    c = make_container(
        "web1",
        state="RUNNING",
        config_text="lxc.cgroup.memory.limit_in_bytes = 256M\nlxc.cgroup.cpu.shares = 512\n",
        cgroup_live={
            "memory.limit_in_bytes": "268435456",
            "memory.memsw.limit_in_bytes": "9223372036854771712",  # the kernel's "no limit"
        },
    )
    client.force_login(admin)
    body = client.get(reverse("containers:limits", args=[c.pk])).content.decode()
    row = body.split('data-key="memory.limit_in_bytes"')[1].split("</tr>")[0]
    saved = re.search(r'<td class="saved"[^>]*>([^<]*)</td>', row).group(1)
    live = re.search(r'<td class="live"[^>]*>([^<]*)</td>', row).group(1)
    assert saved == live == "256 MiB"
    assert "differs" not in row
    memsw = body.split('data-key="memory.memsw.limit_in_bytes"')[1].split("</tr>")[0]
    assert ">unlimited<" in memsw


def test_a_saved_limit_can_be_removed_and_an_unsaved_one_is_refused(client, admin, make_container):
    c = make_container("web1", config_text="lxc.cgroup.memory.limit_in_bytes = 256M\n")
    client.force_login(admin)
    body = client.get(reverse("containers:limits", args=[c.pk])).content.decode()
    assert body.count('name="remove"') == 1 and 'value="memory.limit_in_bytes"' in body
    response = client.post(reverse("containers:limits", args=[c.pk]), {"remove": "cpu.shares"})
    assert response.status_code == 409 and "has no saved limit" in response.content.decode()
    assert Operation.objects.count() == 0
    response = client.post(reverse("containers:limits", args=[c.pk]), {"remove": "memory.limit_in_bytes"})
    op = Operation.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("operation-detail", args=[op.pk])
    assert op.kind == "container.limit.remove" and op.params["key"] == "memory.limit_in_bytes"
    event = AuditEvent.objects.filter(action="container.limit.remove", result="accepted").get()
    assert event.before == {"saved": "256M"} and event.after == {"saved": None}
