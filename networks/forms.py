from __future__ import annotations

from django import forms

from console.forms import flag_field, text_field
from console.models import Host
from networks.choices import ForwardMode


class DefineNetworkForm(forms.Form):
    host = forms.ModelChoiceField(queryset=Host.objects.all(), to_field_name="slug", empty_label=None)
    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    bridge = forms.CharField(
        max_length=200, help_text="a new bridge name (must not exist on the host), e.g. virbr10"
    )
    forward_mode = forms.ChoiceField(
        choices=ForwardMode.choices, initial=ForwardMode.NONE, label="Forward mode"
    )
    address = forms.CharField(max_length=64, help_text="the bridge's address, e.g. 192.168.250.1")
    netmask = forms.CharField(max_length=64, initial="255.255.255.0")
    dhcp_start = forms.CharField(max_length=64, required=False, label="DHCP range start")
    dhcp_end = forms.CharField(max_length=64, required=False, label="DHCP range end")


class NetworkActionForm(forms.Form):
    enabled = flag_field()  # autostart's checkbox


class ReservationForm(forms.Form):
    """A DHCP host reservation; the service checks the values."""

    mac = text_field()
    ip = text_field()
    host_name = text_field()
