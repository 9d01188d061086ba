from __future__ import annotations

import re

from django import forms

from console.models import Host
from containers.choices import Template


class AsciiIntegerField(forms.IntegerField):
    """A whole number in ASCII digits: Django's IntegerField takes any script's digits ("٥")."""

    def to_python(self, value: object) -> int | None:
        if isinstance(value, str) and value.strip() and not re.fullmatch(r"-?[0-9]+", value.strip()):
            raise forms.ValidationError("Enter a whole number in the digits 0-9.", code="invalid")
        return super().to_python(value)


class CreateContainerForm(forms.Form):
    host = forms.ModelChoiceField(queryset=Host.objects.all(), to_field_name="slug", empty_label=None)
    name = forms.CharField(
        max_length=200,
        help_text="1-63 characters: letters, digits, '-', '_' and '.'; not starting with '-' or '.'",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True}),
    )
    template = forms.ChoiceField(choices=Template.choices, initial=Template.BUSYBOX)
    # Choices: the chosen host's LXC paths (set by the view; the services check them again).
    lxc_path = forms.ChoiceField(
        required=False,
        label="LXC path",
        help_text="The host's LXC paths: its default one, and the paths of its pools (a pool's "
        "path puts the container on the pool).",
        error_messages={"invalid_choice": "unknown LXC path %(value)s: choose one of the host's LXC paths"},
    )
    release = forms.CharField(
        required=False,
        label="Debian release",
        help_text="For the Debian template; empty for the default. The first create of a release "
        "downloads it (minutes); later ones copy the cache.",
    )
    fssize = forms.CharField(
        required=False,
        label="Logical volume size",
        help_text="On an LVM pool's LXC path: the new LV's size (default 1G). The pool decides the "
        "backing store: btrfs subvolume, LVM volume or ZFS dataset.",
    )
    tarball = forms.CharField(
        required=False,
        label="Root filesystem tarball",
        help_text="For the tarball template: a .tar[.gz|.xz] on the host, in an allowed directory.",
    )


class StopForm(forms.Form):
    timeout = AsciiIntegerField(min_value=0, max_value=3600, required=False)
    force = forms.BooleanField(required=False)


class DestroyForm(forms.Form):
    stop_first = forms.BooleanField(required=False, label="Stop it first if it is running")
    confirm = forms.CharField(label="Type the container's name to confirm")


class CopyForm(forms.Form):
    new_name = forms.CharField(max_length=200, label="Name of the copy")
    snapshot = forms.BooleanField(
        required=False, initial=True, label="Copy-on-write snapshot (lxc-copy -s) instead of a full copy"
    )
    lxc_path = forms.CharField(required=False, label="LXC path of the copy")


class AttachForm(forms.Form):
    command = forms.CharField(
        max_length=4096, label="Command", help_text="Split like a shell would, but no shell runs it"
    )
    timeout = AsciiIntegerField(min_value=1, max_value=600, required=False, initial=60)
