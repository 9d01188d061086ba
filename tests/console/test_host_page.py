"""A host's page: a superuser's audited edit, the LXC system defaults and who is offered their form."""

from __future__ import annotations

from django.urls import reverse


def test_superuser_edits_a_host_and_the_change_is_audited(client, superuser, host):
    from console.models import AuditEvent

    client.force_login(superuser)
    response = client.post(
        reverse("host-update", args=[host.slug]),
        {"name": "Rack 4 node", "address": "10.9.8.7", "libvirt_uri": "lxc:///"},
    )
    assert response.status_code == 302
    host.refresh_from_db()
    assert host.name == "Rack 4 node" and host.address == "10.9.8.7"
    event = AuditEvent.objects.get(action="host.update", result="succeeded")
    assert event.before["name"] == "test host" and event.after["name"] == "Rack 4 node"
    bad = client.post(
        reverse("host-update", args=[host.slug]), {"name": "x", "libvirt_uri": "file:///etc/passwd"}
    )
    assert bad.status_code == 400
    host.refresh_from_db()
    assert host.libvirt_uri == "lxc:///"


def test_host_page_shows_the_lxc_system_defaults_and_offers_the_form_to_admins(client, admin, viewer, host):
    host.capabilities = {
        **host.capabilities,
        "lxc": {
            **host.capabilities["lxc"],
            "system_config": {"lxc.lxcpath": "/var/lib/lxc", "lxc.cgroup.use": ""},
        },
    }
    host.save()
    client.force_login(admin)
    page = client.get(f"/hosts/{host.slug}/").content.decode()
    assert "<code>lxc.lxcpath</code></td><td><code>/var/lib/lxc</code>" in page
    assert '<code>lxc.cgroup.use</code></td><td><span class="muted">not set</span>' in page
    assert f"/containers/hosts/{host.slug}/lxc-conf/" in page
    client.force_login(viewer)
    page = client.get(f"/hosts/{host.slug}/").content.decode()
    assert "<code>/var/lib/lxc</code>" in page and "/lxc-conf/" not in page
