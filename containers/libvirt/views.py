"""libvirt-LXC domain pages: they read the inventory; actions go through containers.libvirt.services."""

from __future__ import annotations

from typing import cast

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from console import access
from console.decorators import audited_post
from console.errors import ServiceError
from console.forms import answer_operation, posted, queue_from_form
from console.htmx import HtmxHttpRequest
from console.models import Host, Operation
from console.operations import RequestContext
from containers.choices import Backend, ContainerAction, DomainOp
from containers.libvirt import services
from containers.libvirt.domain_xml import parse_domain_xml
from containers.libvirt.forms import (
    ConvertForm,
    DefineDomainForm,
    DomainActionForm,
    DomainEditForm,
    DomainXmlForm,
)
from containers.models import Container, attached_block_devices
from networks.models import Network

# The page's live panels, by element id, and the part of the page each read renders: the state
# panel's read also answers the recent operations (out of band); "ops" for pages loaded before.
_PANELS = {"container-state": "refresh", "container-ops": "ops", "domain-attach": "attach"}


def domain_detail(request: HtmxHttpRequest, container: Container) -> HttpResponse:
    """The page of a libvirt domain (the container page delegates here for backend "libvirt")."""
    operations = (
        Operation.objects.filter(lock_key=container.lock_key)
        .select_related("actor", "host")
        .defer("log")[:10]
    )
    info = parse_domain_xml(container.domain_xml)
    context = {
        "container": container,
        "info": info,
        "operations": operations,
        "active": next((op for op in operations if op.is_active), None),
        "can_operate": access.can(request.user, "operate", container.host),
        "can_admin": access.can(request.user, "admin", container.host),
    }
    # Only the names not in use (vda is the root filesystem's name in libvirt's own numbering).
    used = {d["target"] for d in info.disks}
    context["targets"] = [t for t in (f"vd{c}" for c in "bcdefghijklmnopqrstuvwxyz") if t not in used]
    # Read by the attach panel only (a callable: the state and operations panels do not pay for it).
    context["devices"] = lambda: free_devices(container.host)
    partial = _PANELS.get(request.htmx.target or "") if request.htmx else None
    if partial:
        return render(request, f"containers/domain_detail.html#{partial}", context)
    return render(request, "containers/domain_detail.html", context)


def free_devices(host: Host) -> list[tuple[str, str]]:
    """The host's block devices a domain may be given: nothing mounts or uses them, no domain has them."""
    from storage.models import HostStorage

    inventory = HostStorage.objects.filter(host=host).first()
    if inventory is None:
        return []
    return inventory.free_device_choices(taken=set(attached_block_devices(host)))


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@audited_post(DomainOp.DEFINE)
def domain_create(request: HttpRequest) -> HttpResponse:
    """Define a domain from a form or, for admins, from pasted XML (also the last step of a conversion)."""
    hosts = access.for_user(Host.objects.all(), request.user)
    access.require_post_role(request, "admin", None)
    mode = request.POST.get("mode") or request.GET.get("mode") or "form"
    is_post = request.method == "POST"
    form = DefineDomainForm(
        request.POST if is_post and mode == "form" else None, initial={"host": hosts.first()}
    )
    xml_form = DomainXmlForm(
        request.POST if is_post and mode == "xml" else None, initial={"host": hosts.first()}
    )
    cast(forms.ModelChoiceField, form.fields["host"]).queryset = hosts
    cast(forms.ModelChoiceField, xml_form.fields["host"]).queryset = hosts
    ctx = RequestContext.from_request(request)

    def define(data: dict) -> Operation:
        if mode == "form":
            return services.define_domain(
                actor=request.user,
                ctx=ctx,
                host=data["host"],
                name=data["name"],
                memory_mib=data["memory_mib"],
                vcpus=data["vcpus"],
                init=data["init"],
                rootfs=data["rootfs"],
                debootstrap_release=data.get("debootstrap_release") or None,
                network=data["network"],
                bridge=data["bridge"],
                mac=data["mac"],
            )
        return services.define_domain_from_xml(
            actor=request.user, ctx=ctx, host=data["host"], xml=data["xml"]
        )

    response, status = queue_from_form(request, form if mode == "form" else xml_form, define)
    if response is not None:
        return response
    context = {
        "form": form,
        "xml_form": xml_form,
        "mode": mode,
        "networks": Network.objects.filter(host__in=hosts),
        "can_admin": access.can(request.user, "admin"),
    }
    return render(request, "containers/domain_create.html", context, status=status)


@require_POST
@login_required
@audited_post(ContainerAction.DOMAIN_ACTION)
def domain_action(request: HtmxHttpRequest, pk: int, action: str) -> HttpResponse:
    container = access.get_for_user(Container.objects.select_related("host"), request.user, pk=pk)
    access.require_post_role(request, "operate", container.host)
    if action not in ("attach-disk", "detach-disk", *services.ACTIONS):
        return HttpResponse(status=404)
    ctx, data = RequestContext.from_request(request), posted(DomainActionForm, request)

    def start() -> Operation:
        # The service checks the role each action needs (admin for disks): once, there.
        if action == "attach-disk":
            return services.attach_disk(
                actor=request.user,
                ctx=ctx,
                container=container,
                device=data["device"],
                target=data["target"],
            )
        if action == "detach-disk":
            return services.detach_disk(
                actor=request.user, ctx=ctx, container=container, target=data["target"]
            )
        return services.domain_action(
            actor=request.user,
            ctx=ctx,
            container=container,
            action=action,
            enabled=data["enabled"],
        )

    back = reverse("containers:detail", args=[pk])
    return answer_operation(request, start, back=back, card={"in_container": True})


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@audited_post(DomainOp.CONVERT)
def container_convert(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Native LXC container -> libvirt domain: convert on the agent, review and edit, then define."""
    container = access.get_for_user(Container.objects.select_related("host"), request.user, pk=pk)
    access.require_post_role(request, "admin", container.host)
    if request.method != "POST":
        return _convert_page(request, container)
    new_name = posted(ConvertForm, request)["new_name"].strip() or container.name
    return answer_operation(
        request,
        lambda: services.convert_container(
            actor=request.user,
            ctx=RequestContext.from_request(request),
            container=container,
            new_name=new_name,
        ),
        page=lambda refusal: _convert_page(request, container, refusal),
        # The conversion's page: its result, to review and define.
        accepted=lambda queued: redirect(f"{reverse('containers:convert', args=[pk])}?op={queued.pk}"),
    )


def _convert_page(
    request: HtmxHttpRequest, container: Container, refusal: ServiceError | None = None
) -> HttpResponse:
    op: Operation | None = None
    op_id = request.GET.get("op", "")
    if op_id.isdigit():
        op = Operation.objects.filter(
            pk=int(op_id), kind=DomainOp.CONVERT, target=container.target, actor=request.user.pk
        ).first()
    context = {
        "container": container,
        "error": refusal.message if refusal else None,
        "op": op,
        "is_libvirt": container.backend == Backend.LIBVIRT,
        "can_admin": access.can(request.user, "admin", container.host),
    }
    if request.htmx and request.htmx.target == "conversion" and op is not None:
        response = render(request, "containers/container_convert.html#conversion", context)
        if op.is_terminal:
            response.status_code = 286  # htmx: stop polling
        return response
    return render(
        request, "containers/container_convert.html", context, status=refusal.status_code if refusal else 200
    )


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@audited_post(DomainOp.REDEFINE)
def domain_xml_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """``virsh edit`` in the browser (admins): the definition, a diff before saving, a stale base refused."""
    from containers.lxc_config import config_hash, unified_diff

    container = access.get_for_user(Container.objects.select_related("host"), request.user, pk=pk)
    access.require_post_role(request, "admin", container.host)
    if container.backend != Backend.LIBVIRT and request.method != "POST":
        return redirect("containers:config", pk=pk)  # a native container's config file
    context: dict = {
        "container": container,
        "can_admin": access.can(request.user, "admin", container.host),
        "base_hash": config_hash(container.domain_xml),
        "text": container.domain_xml,
        "diff": None,
    }

    def page(refusal: ServiceError | None = None) -> HttpResponse:
        if refusal is not None:
            context.update(error=refusal.message, text=text)
        status = refusal.status_code if refusal else 200
        return render(request, "containers/domain_xml.html", context, status=status)

    if request.method != "POST":
        return page()
    data = posted(DomainEditForm, request)
    # Browsers send a textarea's lines with CRLF: the diff and the saved XML use LF.
    text = data["text"].replace("\r\n", "\n")
    if data["mode"] == "save":
        return answer_operation(
            request,
            lambda: services.redefine_domain(
                actor=request.user,
                ctx=RequestContext.from_request(request),
                container=container,
                xml=text,
                base_hash=data["base_hash"],
            ),
            page=page,
            follow=True,
        )
    context.update(
        text=text,
        base_hash=data["base_hash"],
        diff=unified_diff(container.domain_xml, text, f"{container.name}.xml"),
    )
    return page()
