"""How a view reads a POST (forms) and answers a request that queues an operation (htmx and plain
forms), in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from console import access
from console.errors import Forbidden, ServiceError
from console.htmx import HtmxHttpRequest
from console.models import Host, Operation


def text_field(**kwargs: Any) -> forms.CharField:
    """A text field handed to the service exactly as typed (not required, not stripped): the
    service checks it and says what is wrong, with the field's name."""
    return forms.CharField(required=False, strip=False, **kwargs)


class FlagField(forms.Field):
    """True when the value sent is ``on`` (a checkbox's "on"; "1" for a hidden flag), as the
    pages send them; anything else, or nothing, is False."""

    def __init__(self, on: str = "on", **kwargs: Any) -> None:
        self.on = on
        super().__init__(required=False, **kwargs)

    def to_python(self, value: Any) -> bool:
        return value == self.on


def flag_field(on: str = "on") -> FlagField:
    return FlagField(on)


class TextListField(forms.Field):
    """Every value posted under the field's name (``getlist``), as typed."""

    widget = forms.MultipleHiddenInput

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, **kwargs)

    def to_python(self, value: Any) -> list[str]:
        return [str(v) for v in value] if value else []


def posted(form_class: type[forms.Form], request: HttpRequest) -> dict[str, Any]:
    """The cleaned data of a form whose fields only carry the input to a service (text, flags,
    lists): such a form always parses; one that does not is a 400."""
    form = form_class(request.POST)
    if not form.is_valid():
        raise BadRequest(form.errors.as_text())
    return form.cleaned_data


def host_form(form_class: type[forms.Form], request: HttpRequest, **initial: Any) -> forms.Form:
    """``form_class`` bound to the POST, its ``host`` choices limited to the hosts the user sees."""
    hosts = access.for_user(Host.objects.all(), request.user)
    form = form_class(request.POST or None, initial={"host": hosts.first(), **initial})
    cast(forms.ModelChoiceField, form.fields["host"]).queryset = hosts
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


def refused(request: HtmxHttpRequest, exc: ServiceError, back: str) -> HttpResponse:
    """A refusal where it was asked: in the htmx target (and any 403 as a page of its own), or
    as a message on ``back`` for a plain form."""
    if request.htmx or isinstance(exc, Forbidden):
        return render(request, "console/_error.html", {"message": exc.message}, status=exc.status_code)
    messages.error(request, exc.message)
    return redirect(back)


def refusal_page(
    request: HttpRequest, template: str, context: dict[str, Any], refusal: ServiceError | None
) -> HttpResponse:
    """A form page, showing the refusal of its POST (message, and the refusal's status) if any."""
    status = refusal.status_code if refusal else 200
    return render(
        request, template, {**context, "error": refusal.message if refusal else None}, status=status
    )


def answer_operation(
    request: HtmxHttpRequest,
    start: Callable[[], Operation | None],
    *,
    back: str = "",
    page: Callable[[ServiceError | None], HttpResponse] | None = None,
    follow: bool = False,
    card: dict[str, Any] | None = None,
    accepted: Callable[[Operation], HttpResponse] | None = None,
) -> HttpResponse:
    """The one answer of a view whose request queues an operation with ``start()``.

    Accepted: ``accepted(op)`` when the page has its own answer (the file browser shows the read
    it asked for); with ``follow`` the operation's page (an htmx button: a client redirect),
    otherwise the operation's live card in the htmx target (202, ``card`` adds to its context) or,
    for a plain form, a message on ``back``. Nothing queued (``start()`` returns None: nothing
    needed doing): ``page(None)``, or ``back``. Refused: ``page(exc)`` when the page shows its own
    refusal (a form page renders itself with the message and the refusal's status), else
    :func:`refused`.
    """
    try:
        op = start()
    except ServiceError as exc:
        return page(exc) if page is not None else refused(request, exc, back)
    if op is None:
        return page(None) if page is not None else redirect(back)
    if accepted is not None:
        return accepted(op)
    if request.htmx and not follow:
        return render(request, "console/_operation.html", {"op": op, **(card or {})}, status=202)
    messages.info(request, f"Operation #{op.pk} queued: {op.kind} on {op.target}")
    if not follow:
        return redirect(back)
    if request.htmx and page is None:
        # An htmx button's answer would land in its small target: the browser goes there instead.
        return HttpResponseClientRedirect(reverse("operation-detail", args=[op.pk]))
    return redirect("operation-detail", pk=op.pk)
