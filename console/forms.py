"""Form handling shared by the pages whose form queues one operation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from console import access
from console.errors import ServiceError
from console.models import Host, Operation


def host_form(form_class: type[forms.Form], request: HttpRequest, **initial: Any) -> forms.Form:
    """``form_class`` bound to the POST, its ``host`` choices limited to the hosts the user sees."""
    hosts = access.for_user(Host.objects.all(), request.user)
    form = form_class(request.POST or None, initial={"host": hosts.first(), **initial})
    form.fields["host"].queryset = hosts
    return form


def queue_from_form(
    request: HttpRequest, form: forms.Form, start: Callable[[dict[str, Any]], Operation]
) -> tuple[HttpResponse | None, int]:
    """The POST half of such a page: ``start(cleaned_data)`` queues the operation.

    Returns the redirect to the operation's page once it is queued; otherwise no response and
    the status to render the form with (200 for a GET, 400 for a form that does not parse, the
    service's own status for its refusal, which is put on the field it names, if the form has it).
    """
    if request.method != "POST":
        return None, 200
    if not form.is_valid():
        return None, 400
    try:
        op = start(form.cleaned_data)
    except ServiceError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return None, exc.status_code
    return redirect("operation-detail", pk=op.pk), 302
