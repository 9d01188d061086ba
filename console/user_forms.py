"""Forms of the Users pages. They only shape the input; console.user_services checks it."""

from __future__ import annotations

from typing import Any, cast

from django import forms


class UserCreateForm(forms.Form):
    # Not stripped: the service refuses blanks around a name rather than changing what was typed.
    username = forms.CharField(label="User name", max_length=150, strip=False)
    email = forms.CharField(label="E-mail (optional)", max_length=254, required=False, strip=False)
    how = forms.ChoiceField(
        label="Password",
        choices=[
            ("invite", "Invite: make a one-time link with which they set their own password"),
            ("password", "Set it now"),
        ],
        initial="invite",
        widget=forms.RadioSelect,
    )
    password1 = forms.CharField(label="Password", required=False, strip=False, widget=forms.PasswordInput)
    password2 = forms.CharField(
        label="Password again", required=False, strip=False, widget=forms.PasswordInput
    )
    teams = forms.MultipleChoiceField(
        label="Teams", required=False, choices=[], widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, team_names: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.MultipleChoiceField, self.fields["teams"]).choices = [(n, n) for n in team_names]

    def clean(self) -> dict:
        data = super().clean()
        assert data is not None  # Form.clean returns cleaned_data
        if data.get("how") == "password":
            if not data.get("password1"):
                self.add_error("password1", "Type the password, or choose to invite them.")
            elif data.get("password1") != data.get("password2"):
                self.add_error("password2", "The two passwords differ.")
        return data


class ConfirmForm(forms.Form):
    """A destructive action goes ahead only once the user's name is typed."""

    # Exactly the name: not stripped, like the user name itself.
    confirm = forms.CharField(label="Type the user name to confirm", max_length=150, strip=False)

    def __init__(self, *args: Any, username: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.username = username

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"]
        if value != self.username:
            raise forms.ValidationError(f"Type {self.username} exactly to confirm.")
        return value


class LinkPasswordForm(forms.Form):
    new_password1 = forms.CharField(
        label="New password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    new_password2 = forms.CharField(
        label="New password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
