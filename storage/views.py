"""Storage pages: they read the inventory; actions go through storage.services."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from console import access
from console.decorators import audited_post
from console.errors import ServiceError
from console.models import Host, Operation
from console.operations import RequestContext
from storage import conf, services
from storage.dependencies import loop_device_dependants, pool_dependants
from storage.forms import LoopCreateForm, LoopDetachForm, PoolCreateForm, PoolDestroyForm
from storage.models import HostStorage, LoopDevice, Pool


def _visible_hosts(request: HttpRequest) -> list[Host]:
    return list(access.for_user(Host.objects.all(), request.user))


def _recent_operations(hosts: list[Host]) -> list[Operation]:
    return list(
        Operation.objects.filter(host__in=hosts, kind__startswith="storage.")
        .select_related("host", "actor")
        .defer("log")[:10]
    )


@require_http_methods(["GET", "HEAD"])
@login_required
def storage_index(request: HttpRequest) -> HttpResponse:
    hosts = _visible_hosts(request)
    sections = []
    for host in hosts:
        sections.append(
            {
                "host": host,
                "inventory": HostStorage.objects.filter(host=host).first(),
                "loops": list(LoopDevice.objects.filter(host=host)),
                "pools": list(Pool.objects.filter(host=host)),
                "can_admin": access.can(request.user, "admin", host),
            }
        )
    context = {"sections": sections, "operations": _recent_operations(hosts), "image_dir": conf.image_dir()}
    return render(request, "storage/index.html", context)


def _field_error(form, exc: ServiceError) -> None:  # noqa: ANN001
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


@require_http_methods(["GET", "POST"])
@login_required
@audited_post("storage.loop.create")
def loop_create(request: HttpRequest) -> HttpResponse:
    access.require_post_role(request, "admin", None)
    hosts = access.for_user(Host.objects.all(), request.user)
    form = LoopCreateForm(request.POST or None, initial={"host": hosts.first()})
    form.fields["host"].queryset = hosts
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                op = services.create_loop_device(
                    actor=request.user,
                    ctx=RequestContext.from_request(request),
                    host=data["host"],
                    name=data["name"],
                    size=data["size"],
                    fill=data["fill"],
                )
            except ServiceError as exc:
                _field_error(form, exc)
                status = exc.status_code
            else:
                return redirect("operation-detail", pk=op.pk)
        else:
            status = 400
    context = {"form": form, "image_dir": conf.image_dir()}
    return render(request, "storage/loop_create.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
@audited_post("storage.loop.detach")
def loop_detach(request: HttpRequest, pk: int) -> HttpResponse:
    loop = access.get_for_user(LoopDevice.objects.select_related("host"), request.user, pk=pk)
    access.require_post_role(request, "admin", loop.host)
    form = LoopDetachForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid() and form.cleaned_data["confirm"] != loop.device:
            form.add_error("confirm", f"type {loop.device} to confirm")
        if form.is_valid():
            try:
                op = services.detach_loop_device(
                    actor=request.user,
                    ctx=RequestContext.from_request(request),
                    loop=loop,
                    delete_file=form.cleaned_data["delete_file"],
                )
            except ServiceError as exc:
                _field_error(form, exc)
                status = exc.status_code
            else:
                return redirect("operation-detail", pk=op.pk)
        else:
            status = 400
    context = {"loop": loop, "form": form, "dependants": loop_device_dependants(loop)}
    return render(request, "storage/loop_detach.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
@audited_post("storage.pool.create")
def pool_create(request: HttpRequest) -> HttpResponse:
    access.require_post_role(request, "admin", None)
    hosts = access.for_user(Host.objects.all(), request.user)
    initial = {"host": hosts.first(), "device": request.GET.get("device", "")}
    form = PoolCreateForm(request.POST or None, initial=initial)
    form.fields["host"].queryset = hosts
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                op = services.create_pool(
                    actor=request.user,
                    ctx=RequestContext.from_request(request),
                    host=data["host"],
                    name=data["name"],
                    kind=data["kind"],
                    device=data["device"] or None,
                    wipe=data["wipe"],
                    vg_name=data["vg_name"] or None,
                    path=data["path"] or None,
                )
            except ServiceError as exc:
                _field_error(form, exc)
                status = exc.status_code
            else:
                return redirect("operation-detail", pk=op.pk)
        else:
            status = 400
    context = {"form": form, "pool_dir": conf.pool_dir()}
    return render(request, "storage/pool_create.html", context, status=status)


@require_http_methods(["GET", "HEAD"])
@login_required
def pool_detail(request: HttpRequest, pk: int) -> HttpResponse:
    pool = access.get_for_user(Pool.objects.select_related("host"), request.user, pk=pk)
    context = {
        "pool": pool,
        "dependants": pool_dependants(pool),
        "operations": Operation.objects.filter(lock_key=pool.lock_key)
        .select_related("actor")
        .defer("log")[:10],
        "can_admin": access.can(request.user, "admin", pool.host),
    }
    return render(request, "storage/pool_detail.html", context)


@require_http_methods(["GET", "POST"])
@login_required
@audited_post("storage.pool.destroy")
def pool_destroy(request: HttpRequest, pk: int) -> HttpResponse:
    pool = access.get_for_user(Pool.objects.select_related("host"), request.user, pk=pk)
    access.require_post_role(request, "admin", pool.host)
    form = PoolDestroyForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                op = services.destroy_pool(
                    actor=request.user,
                    ctx=RequestContext.from_request(request),
                    pool=pool,
                    confirm=form.cleaned_data["confirm"],
                )
            except ServiceError as exc:
                _field_error(form, exc)
                status = exc.status_code
            else:
                return redirect("operation-detail", pk=op.pk)
        else:
            status = 400
    context = {"pool": pool, "form": form, "dependants": pool_dependants(pool)}
    return render(request, "storage/pool_destroy.html", context, status=status)
