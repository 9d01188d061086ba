"""A libvirt-LXC domain's XML gets its own field (it was kept in ``config_text``, the field of a
native container's config file)."""

from __future__ import annotations

from django.db import migrations, models


def move_to_domain_xml(apps, schema_editor):
    Container = apps.get_model("containers", "Container")
    for c in Container.objects.filter(backend="libvirt").exclude(config_text=""):
        c.domain_xml, c.config_text = c.config_text, ""
        c.save(update_fields=["domain_xml", "config_text"])


def move_back(apps, schema_editor):
    Container = apps.get_model("containers", "Container")
    for c in Container.objects.filter(backend="libvirt").exclude(domain_xml=""):
        c.config_text, c.domain_xml = c.domain_xml, ""
        c.save(update_fields=["domain_xml", "config_text"])


class Migration(migrations.Migration):
    dependencies = [("containers", "0007_terminal_ticket_session")]

    operations = [
        migrations.AddField(
            model_name="container",
            name="domain_xml",
            field=models.TextField(blank=True),
        ),
        migrations.RunPython(move_to_domain_xml, move_back),
    ]
