"""Storage pages: they read the inventory; actions go through storage.services."""

from __future__ import annotations

from typing import cast

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from console import access
from console.decorators import audited_post
from console.forms import host_form, queue_from_form
from console.htmx import HtmxHttpRequest
from console.models import Host, Operation
from console.operations import RequestContext
from containers.models import Container, attached_block_devices_of
from storage import conf, services
from storage.choices import StorageOp
from storage.dependencies import loop_device_dependants, loop_device_holders, pool_dependants
from storage.forms import LoopCreateForm, LoopDetachForm, LoopMkfsForm, PoolCreateForm, PoolDestroyForm
from storage.models import HostStorage, LoopDevice, Pool, size_label


def _visible_hosts(request: HttpRequest) -> list[Host]:
    return list(access.for_user(Host.objects.all(), request.user))


def _recent_operations(hosts: list[Host]) -> list[Operation]:
    return Operation.objects.filter(host__in=hosts).newest_of_kinds(StorageOp.values)


def _holders(loop: LoopDevice, pools: list[Pool], domains: dict[str, str]) -> str:
    return ", ".join(f"{d.kind} {d.name}" for d in loop_device_holders(loop, pools, domains))


@require_http_methods(["GET", "HEAD"])
@login_required
def storage_index(request: HttpRequest) -> HttpResponse:
    hosts = list(_visible_hosts(request))
    # A few queries for all hosts together (not per host), grouped here.
    inventories = {s.host_id: s for s in HostStorage.objects.filter(host__in=hosts)}
    loops: dict[int, list[LoopDevice]] = {}
    for loop in LoopDevice.objects.filter(host__in=hosts):
        loops.setdefault(loop.host_id, []).append(loop)
    pools: dict[int, list[Pool]] = {}
    # With how many containers live on each (one subquery, not a query per pool): Destroy is then
    # shown disabled with the reason (the pool's page and its destroy page list them).
    living = (
        Container.objects.filter(host_id=OuterRef("host_id"), lxc_path=OuterRef("lxc_path"))
        .order_by()
        .values("host_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    for pool in Pool.objects.filter(host__in=hosts).annotate(containers_on=Coalesce(Subquery(living), 0)):
        pools.setdefault(pool.host_id, []).append(pool)
    # The block devices the hosts' libvirt domains have (one query): Detach is disabled for those.
    domains = attached_block_devices_of(hosts)
    sections = [
        {
            "host": host,
            "inventory": inventories.get(host.pk),
            # With what holds it: Detach is then shown disabled with the reason (the detach page
            # lists everything that depends, in the order to remove it).
            "loops": [
                (loop, _holders(loop, pools.get(host.pk, []), domains.get(host.pk, {})))
                for loop in loops.get(host.pk, [])
            ],
            "pools": pools.get(host.pk, []),
            "can_admin": access.can(request.user, "admin", host),
        }
        for host in hosts
    ]
    context = {
        "sections": sections,
        "operations": _recent_operations(hosts),
        "image_dir": conf.image_dir(),
        # Loop devices and pools are made by a host's admins: the buttons only for them.
        "can_create": any(s["can_admin"] for s in sections),
    }
    return render(request, "storage/index.html", context)


@require_http_methods(["GET", "POST"])
@login_required
@audited_post(StorageOp.LOOP_CREATE)
def loop_create(request: HttpRequest) -> HttpResponse:
    access.require_post_role(request, "admin", None)
    form = host_form(LoopCreateForm, request)
    response, status = queue_from_form(
        request,
        form,
        lambda data: services.create_loop_device(
            actor=request.user,
            ctx=RequestContext.from_request(request),
            host=data["host"],
            name=data["name"],
            size=data["size"],
            fill=data["fill"],
        ),
    )
    if response is not None:
        return response
    context = {"form": form, "image_dir": conf.image_dir()}
    return render(request, "storage/loop_create.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
@audited_post(StorageOp.LOOP_DETACH)
def loop_detach(request: HttpRequest, pk: int) -> HttpResponse:
    loop = access.get_for_user(LoopDevice.objects.select_related("host"), request.user, pk=pk)
    access.require_post_role(request, "admin", loop.host)
    form = LoopDetachForm(request.POST or None, device=loop.device)
    response, status = queue_from_form(
        request,
        form,
        lambda data: services.detach_loop_device(
            actor=request.user,
            ctx=RequestContext.from_request(request),
            loop=loop,
            delete_file=data["delete_file"],
        ),
    )
    if response is not None:
        return response
    context = {"loop": loop, "form": form, "dependants": loop_device_dependants(loop)}
    return render(request, "storage/loop_detach.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
@audited_post(StorageOp.LOOP_MKFS)
def loop_mkfs(request: HttpRequest, pk: int) -> HttpResponse:
    loop = access.get_for_user(LoopDevice.objects.select_related("host"), request.user, pk=pk)
    access.require_post_role(request, "admin", loop.host)
    form = LoopMkfsForm(request.POST or None, device=loop.device)
    response, status = queue_from_form(
        request,
        form,
        lambda data: services.make_filesystem(
            actor=request.user, ctx=RequestContext.from_request(request), loop=loop, wipe=data["wipe"]
        ),
    )
    if response is not None:
        return response
    context = {"loop": loop, "form": form, "dependants": loop_device_dependants(loop)}
    return render(request, "storage/loop_mkfs.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
@audited_post(StorageOp.POOL_CREATE)
def pool_create(request: HtmxHttpRequest) -> HttpResponse:
    access.require_post_role(request, "admin", None)
    form = host_form(PoolCreateForm, request, device=request.GET.get("device", ""))
    hosts = cast(forms.ModelChoiceField, form.fields["host"]).queryset
    assert hosts is not None  # host_form set it: the hosts the user sees
    # The device choices are the chosen host's free devices (the form's host, or ?host=).
    slug = request.POST.get("host") or request.GET.get("host") or ""
    chosen = hosts.filter(slug=slug).first() if slug else None
    if chosen is not None and not form.is_bound:
        form.initial["host"] = chosen
    chosen = chosen or form.initial.get("host")
    cast(forms.Select, form.fields["device"].widget).choices = device_choices(chosen)
    # Choosing another host reads that host's devices into the form (no reload, typed values kept).
    form.fields["host"].widget.attrs.update(
        {"hx-get": reverse("storage:pool-create"), "hx-trigger": "change", "hx-target": "#device-field"}
    )
    if request.htmx and request.method == "GET":
        return render(request, "storage/pool_create.html#device", {"form": form})
    response, status = queue_from_form(
        request,
        form,
        lambda data: services.create_pool(
            actor=request.user,
            ctx=RequestContext.from_request(request),
            host=data["host"],
            name=data["name"],
            kind=data["kind"],
            device=data["device"] or None,
            wipe=data["wipe"],
            vg_name=data["vg_name"] or None,
            path=data["path"] or None,
        ),
    )
    if response is not None:
        return response
    context = {"form": form, "pool_dir": conf.pool_dir()}
    return render(request, "storage/pool_create.html", context, status=status)


def device_choices(host: Host | None) -> list[tuple[str, str]]:
    """The select of a pool's device: none (a dir pool), then the host's free block devices, each
    with its size, kind and what it holds (a device that holds data needs "wipe")."""
    choices = [("", "none (a dir pool)")]
    inventory = HostStorage.objects.filter(host=host).first() if host is not None else None
    for d in inventory.free_block_devices() if inventory is not None else []:
        holds = f", holds {d['fstype']} (needs wipe)" if d.get("fstype") else ", blank"
        choices.append((d["path"], f"{d['path']} — {size_label(d['size'])} {d['type']}{holds}"))
    return choices


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
        "sync_seconds": settings.INVENTORY_SYNC_SECONDS,
    }
    return render(request, "storage/pool_detail.html", context)


@require_http_methods(["GET", "POST"])
@login_required
@audited_post(StorageOp.POOL_DESTROY)
def pool_destroy(request: HttpRequest, pk: int) -> HttpResponse:
    pool = access.get_for_user(Pool.objects.select_related("host"), request.user, pk=pk)
    access.require_post_role(request, "admin", pool.host)
    form = PoolDestroyForm(request.POST or None)
    response, status = queue_from_form(
        request,
        form,
        lambda data: services.destroy_pool(
            actor=request.user, ctx=RequestContext.from_request(request), pool=pool, confirm=data["confirm"]
        ),
    )
    if response is not None:
        return response
    context = {"pool": pool, "form": form, "dependants": pool_dependants(pool)}
    return render(request, "storage/pool_destroy.html", context, status=status)
