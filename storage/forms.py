from __future__ import annotations

from typing import Any

from django import forms

from console.models import Host
from storage.choices import PoolKind


class LoopCreateForm(forms.Form):
    host = forms.ModelChoiceField(queryset=Host.objects.all(), to_field_name="slug", empty_label=None)
    name = forms.CharField(
        max_length=200, label="File name", help_text="Created in the image directory; .img is added"
    )
    size = forms.CharField(max_length=32, help_text="Such as 500M or 5G")
    fill = forms.BooleanField(
        required=False, label="Fill it with zeros (dd) instead of a sparse file (truncate)"
    )


class _TypedDeviceForm(forms.Form):
    """A loop device's destructive action, confirmed by typing the device's name."""

    confirm = forms.CharField(label="Type the device (for example /dev/loop0) to confirm")

    def __init__(self, data: Any = None, *, device: str) -> None:
        super().__init__(data)
        self.device = device

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"]
        if value != self.device:
            raise forms.ValidationError(f"type {self.device} to confirm")
        return value


class LoopDetachForm(_TypedDeviceForm):
    delete_file = forms.BooleanField(required=False, label="Also delete the backing file")
    field_order = ["delete_file", "confirm"]


class LoopMkfsForm(_TypedDeviceForm):
    wipe = forms.BooleanField(
        required=False,
        label="Wipe the device: I confirm that everything it holds now may be destroyed",
    )
    field_order = ["wipe", "confirm"]


class PoolCreateForm(forms.Form):
    host = forms.ModelChoiceField(queryset=Host.objects.all(), to_field_name="slug", empty_label=None)
    name = forms.CharField(
        max_length=200, help_text="Letters, digits, '-', '_' and '.', like container names"
    )
    kind = forms.ChoiceField(choices=PoolKind.choices, initial=PoolKind.BTRFS)
    # A select of the chosen host's free devices (storage.views sets the choices); the service
    # checks the device again, so a device taken since the page was read gets its real reason.
    device = forms.CharField(
        required=False,
        widget=forms.Select,
        help_text="btrfs, LVM and ZFS: the host's block devices that nothing uses (mounted ones, "
        "pools' devices and disks with partitions are left out)",
    )
    vg_name = forms.CharField(required=False, label="Volume group name", help_text="LVM only; default lxc")
    path = forms.CharField(
        required=False, label="Directory", help_text="dir only; default under the pool directory"
    )
    wipe = forms.BooleanField(
        required=False,
        label="Wipe the device: I confirm that everything it holds now may be destroyed",
    )


class PoolDestroyForm(forms.Form):
    confirm = forms.CharField(label="Type the pool's name to confirm")
