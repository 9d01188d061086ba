from __future__ import annotations

import re
from typing import Any

from django import forms

from console.forms import flag_field, text_field
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


# The forms below only carry a page's input to the service, which checks it (console.forms.posted).


class ConfigKeysForm(forms.Form):
    """The config page's Settings form: every ``lxc.*`` field posted, the known keys and any other
    (unknown keys are refused by the service, not dropped). A checkbox's hidden "0" comes before
    its "1": a field's value is the last one sent, the box's state."""

    def __init__(self, data: Any = None, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        for key in data or ():
            if key.startswith("lxc."):
                self.fields[key] = text_field()

    def values(self) -> dict[str, str]:
        return {k: v for k, v in self.cleaned_data.items() if k.startswith("lxc.")}


class ConfigTextForm(forms.Form):
    """The config page's ``mode`` (keys: the Settings form; preview, save: the raw editor's text and
    the hash of the config it was based on)."""

    mode = text_field()
    text = text_field()
    base_hash = text_field()


class FilesForm(forms.Form):
    """A listing's Download button sends ``file``; the path form sends ``path`` (and ``download``
    "1" for its Download button). Cleaned: the ``path`` to read and whether to ``download`` it."""

    file = text_field()
    path = text_field()
    download = flag_field("1")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "file" in self.data:
            data.update(path=data["file"], download=True)
        elif "path" not in self.data:
            data["path"] = "/"
        return data


class AutostartGroupForm(forms.Form):
    group = text_field()
    all = flag_field("1")


class HookForm(forms.Form):
    hook = text_field()
    script = text_field()
    remove = text_field()


class MountForm(forms.Form):
    source = text_field()
    target = text_field()
    read_only = flag_field()
    create_target = flag_field()
    remove = text_field()  # the mount entry to remove


class LimitForm(forms.Form):
    key = text_field()
    value = text_field()
    apply_live = flag_field()
    persist = flag_field()
    persist_if_refused = flag_field()
    remove = text_field()  # a key to remove from the config


class MountRootsForm(forms.Form):
    roots = text_field()  # one per line
    allow_system = flag_field()


class SystemConfigForm(forms.Form):
    key = text_field()
    value = text_field()
