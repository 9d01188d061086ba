"""Forms of the superusers' pages (teams, hosts). They only carry the input; console.services
checks it (and who may change it)."""

from __future__ import annotations

from django import forms

from console.forms import TextListField, text_field


class TeamCreateForm(forms.Form):
    name = text_field()


class TeamChangeForm(forms.Form):
    """One of the team page's buttons: ``do`` says which (add-member, remove-member, grant,
    revoke, delete); each reads its own fields."""

    do = text_field()
    username = text_field()
    role = text_field()
    scope = text_field()  # "all": every host; otherwise the hosts ticked
    hosts = TextListField()
    binding = text_field()  # a role binding's id, read with console.query.whole_number


class HostUpdateForm(forms.Form):
    name = text_field()
    address = text_field()
    libvirt_uri = text_field()
