"""Container pages: they read the inventory; actions go through containers.services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from console import access
from console.errors import ServiceError
from console.models import Host, Operation
from console.operations import RequestContext
from console.views import paginate
from containers import services
from containers.choices import State
from containers.forms import CreateContainerForm, DestroyForm, StopForm
from containers.models import Container


@login_required
def container_list(request: HttpRequest) -> HttpResponse:
    qs = Container.objects.select_related("host", "origin")
    filters = {k: request.GET.get(k, "").strip() for k in ("q", "host", "state")}
    if filters["q"]:
        qs = qs.filter(Q(name__icontains=filters["q"]) | Q(ips__icontains=filters["q"]))
    if filters["host"]:
        qs = qs.filter(host__slug=filters["host"])
    if filters["state"] in State.values:
        qs = qs.filter(state=filters["state"])
    context = {
        "page": paginate(request, qs),
        "filters": filters,
        "states": State.choices,
        "hosts": Host.objects.all(),
        "can_create": access.can(request.user, "admin"),
    }
    if request.htmx and request.htmx.target == "container-rows":
        return render(request, "containers/container_list.html#rows", context)
    return render(request, "containers/container_list.html", context)


@login_required
def container_detail(request: HttpRequest, pk: int) -> HttpResponse:
    container = get_object_or_404(Container.objects.select_related("host", "origin"), pk=pk)
    operations = (
        Operation.objects.filter(lock_key=container.lock_key)
        .select_related("actor", "host")
        .defer("log")[:10]
    )
    context = {
        "container": container,
        "operations": operations,
        "active": next((op for op in operations if op.is_active), None),
        "can_operate": access.can(request.user, "operate", container.host),
        "can_admin": access.can(request.user, "admin", container.host),
    }
    if request.htmx and request.htmx.target in ("container-state", "container-ops"):
        partial = request.htmx.target.removeprefix("container-")
        return render(request, f"containers/container_detail.html#{partial}", context)
    return render(request, "containers/container_detail.html", context)


def _error(request: HttpRequest, exc: ServiceError, fallback: str) -> HttpResponse:
    if request.htmx:
        return render(request, "console/_error.html", {"message": exc.message}, status=exc.status_code)
    messages.error(request, exc.message)
    return redirect(fallback)


def _accepted(request: HttpRequest, op: Operation, fallback: str) -> HttpResponse:
    if request.htmx:
        return render(request, "console/_operation.html", {"op": op}, status=202)
    messages.info(request, f"Operation #{op.pk} queued: {op.kind} on {op.target}")
    return redirect(fallback)


@login_required
def container_create(request: HttpRequest) -> HttpResponse:
    form = CreateContainerForm(request.POST or None, initial={"host": Host.objects.first()})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                op = services.create_container(
                    actor=request.user,
                    ctx=RequestContext.from_request(request),
                    host=data["host"],
                    name=data["name"],
                    template=data["template"],
                    lxc_path=data["lxc_path"] or None,
                )
            except ServiceError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
                status = exc.status_code
            else:
                return redirect("operation-detail", pk=op.pk)
        else:
            status = 400
    return render(request, "containers/container_create.html", {"form": form}, status=status)


@require_POST
@login_required
def container_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    container = get_object_or_404(Container.objects.select_related("host"), pk=pk)
    back = reverse("containers:detail", args=[pk])
    ctx = RequestContext.from_request(request)
    try:
        if action == "start":
            op = services.start_container(actor=request.user, ctx=ctx, container=container)
        elif action == "stop":
            form = StopForm(request.POST)
            if not form.is_valid():
                raise ServiceError("the stop timeout must be a whole number of seconds between 0 and 3600")
            op = services.stop_container(
                actor=request.user,
                ctx=ctx,
                container=container,
                timeout=form.cleaned_data["timeout"],
                force=form.cleaned_data["force"],
            )
        else:
            return HttpResponse(status=404)
    except ServiceError as exc:
        return _error(request, exc, back)
    return _accepted(request, op, back)


@login_required
def container_destroy(request: HttpRequest, pk: int) -> HttpResponse:
    container = get_object_or_404(Container.objects.select_related("host"), pk=pk)
    form = DestroyForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid() and form.cleaned_data["confirm"] == container.name:
            try:
                op = services.destroy_container(
                    actor=request.user,
                    ctx=RequestContext.from_request(request),
                    container=container,
                    stop_first=form.cleaned_data["stop_first"],
                )
            except ServiceError as exc:
                form.add_error(None, exc.message)
                status = exc.status_code
            else:
                return redirect("operation-detail", pk=op.pk)
        else:
            if form.is_valid():
                form.add_error("confirm", f"type {container.name} exactly to confirm")
            status = 400
    return render(
        request, "containers/container_destroy.html", {"container": container, "form": form}, status=status
    )
