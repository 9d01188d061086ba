"""The storage page: empty states, loop devices and pool usage, who may see it."""

from __future__ import annotations

from storage.models import LoopDevice, Pool


def test_empty_states_say_what_to_do(client, admin, host, inventory):
    client.force_login(admin)
    page = client.get("/storage/").content.decode()
    assert "No pools on testhost" in page and "make a btrfs pool" in page
    assert "No loop devices on testhost" in page and "Create a file and attach it" in page


def test_index_shows_loop_devices_and_pool_usage(client, admin, host, inventory):
    LoopDevice.objects.create(
        host=host, device="/dev/loop0", backing_file="/srv/a.img", size_bytes=2 * 1024**3
    )
    Pool.objects.create(
        host=host,
        name="fast",
        kind="btrfs",
        source="/dev/loop0",
        lxc_path="/p/fast",
        capacity_bytes=2 * 1024**3,
        used_bytes=512 * 1024**2,
    )
    client.force_login(admin)
    page = client.get("/storage/").content.decode()
    assert "/srv/a.img" in page and "2.0\xa0GB" in page
    assert 'value="25"' in page and "512.0\xa0MB of 2.0\xa0GB (25%)" in page


def test_a_pool_with_containers_on_it_offers_destroy_disabled_with_the_reason(client, admin, host, inventory):
    from containers.models import Container

    busy = Pool.objects.create(host=host, name="busy", kind="dir", source="", lxc_path="/p/busy")
    idle = Pool.objects.create(host=host, name="idle", kind="dir", source="", lxc_path="/p/idle")
    for name in ("a1", "a2"):
        Container.objects.create(host=host, name=name, lxc_path="/p/busy", config_text="")
    Container.objects.create(host=host, name="elsewhere", lxc_path=host.lxc_path, config_text="")
    client.force_login(admin)
    page = client.get("/storage/").content.decode()
    assert f'href="/storage/pools/{busy.pk}/destroy/"' not in page  # not offered...
    assert "Destroy is not possible while 2 containers live on it" in page  # ...and why
    assert f'href="/storage/pools/{idle.pk}/destroy/"' in page
