"""A ZFS pool's zpool name gets its own field (it was kept in ``vg_name``)."""

from __future__ import annotations

from django.db import migrations, models


def zpool_from_vg_name(apps, schema_editor):
    Pool = apps.get_model("storage", "Pool")
    for pool in Pool.objects.filter(kind="zfs"):
        # The pool form named the zpool after the pool; rows made by hand may have left vg_name empty.
        pool.zpool, pool.vg_name = pool.vg_name or pool.name, ""
        pool.save(update_fields=["zpool", "vg_name"])


def vg_name_from_zpool(apps, schema_editor):
    Pool = apps.get_model("storage", "Pool")
    for pool in Pool.objects.filter(kind="zfs"):
        pool.vg_name, pool.zpool = pool.zpool, ""
        pool.save(update_fields=["zpool", "vg_name"])


class Migration(migrations.Migration):
    dependencies = [("storage", "0003_host_zpools")]

    operations = [
        migrations.AddField(
            model_name="pool",
            name="zpool",
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.RunPython(zpool_from_vg_name, vg_name_from_zpool),
    ]
