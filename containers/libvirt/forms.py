from __future__ import annotations

from django import forms

from console.forms import flag_field, text_field
from console.models import Host
from containers.libvirt.domain_xml import MEMORY_MIB_MAX, MEMORY_MIB_MIN


class DefineDomainForm(forms.Form):
    host = forms.ModelChoiceField(queryset=Host.objects.all(), to_field_name="slug", empty_label=None)
    name = forms.CharField(
        max_length=200,
        help_text="1-63 characters: letters, digits, '-', '_' and '.'; not starting with '-' or '.'",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True}),
    )
    memory_mib = forms.CharField(
        label="Memory, MiB", initial="128", help_text=f"{MEMORY_MIB_MIN} to {MEMORY_MIB_MAX}"
    )
    vcpus = forms.CharField(label="vCPUs", initial="1", help_text="1 to the host's number of CPUs")
    init = forms.CharField(
        label="Init",
        initial="/bin/sh",
        help_text="absolute path inside the rootfs. /bin/sh gives a shell on the console at once (what a "
        "busybox root filesystem needs). /sbin/init runs the rootfs's own boot: a busybox one first runs "
        "/etc/init.d/rcS, whose udhcpc waits for a DHCP lease before the console shows any prompt "
        "(forever when none comes); a Debian one starts systemd, with a login prompt",
    )
    rootfs = forms.CharField(
        required=False,
        label="Root filesystem directory",
        help_text="an existing directory on the host, e.g. the rootfs of a busybox or Debian container",
    )
    debootstrap_release = forms.CharField(
        required=False,
        label="…or build a Debian root filesystem",
        help_text="a release such as bookworm: built with debootstrap (cached per release) into "
        "the console's domain directory; leave the directory above empty",
    )
    network = forms.CharField(required=False, label="libvirt network", help_text="a network of the host, or")
    bridge = forms.CharField(required=False, label="host bridge", help_text="a bridge such as lxcbr0")
    mac = forms.CharField(
        required=False, label="MAC address", help_text="empty: generated in 00:16:3e:xx:xx:xx"
    )


class DomainXmlForm(forms.Form):
    host = forms.ModelChoiceField(queryset=Host.objects.all(), to_field_name="slug", empty_label=None)
    xml = forms.CharField(
        label="Domain XML",
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false", "class": "code"}),
        help_text="type='lxc' only; at most 64 KiB; no DTD or entities",
    )


class DomainActionForm(forms.Form):
    """A domain page's button: a disk's device and target, or autostart's checkbox."""

    device = text_field()
    target = text_field()
    enabled = flag_field()


class ConvertForm(forms.Form):
    new_name = text_field()  # empty: the container's own name


class DomainEditForm(forms.Form):
    """``virsh edit`` in the browser: ``mode`` save or preview (a diff), the XML, and the hash of
    the definition it was based on."""

    mode = text_field()
    text = text_field()
    base_hash = text_field()
