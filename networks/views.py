"""Network pages: they read the inventory; actions go through networks.services."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from console import access
from console.decorators import audited_post
from console.forms import answer_operation, host_form, posted, queue_from_form
from console.htmx import HtmxHttpRequest
from console.models import Host, Operation
from console.operations import RequestContext
from networks import services
from networks.choices import NetworkAction, NetworkOp
from networks.forms import DefineNetworkForm, NetworkActionForm, ReservationForm
from networks.models import Network
from networks.network_xml import parse_network_xml


@require_safe
@login_required
def network_index(request: HttpRequest) -> HttpResponse:
    hosts = access.for_user(Host.objects.all(), request.user)
    networks = access.for_user(Network.objects.select_related("host"), request.user)
    operations = Operation.objects.filter(host__in=hosts).newest_of_kinds(NetworkOp.values)
    context = {
        "networks": networks,
        "operations": operations,
        "can_create": access.can(request.user, "admin"),
        "admin_hosts": {h.pk for h in hosts if access.can(request.user, "admin", h)},
    }
    return render(request, "networks/index.html", context)


@require_safe
@login_required
def network_detail(request: HttpRequest, pk: int) -> HttpResponse:
    network = access.get_for_user(Network.objects.select_related("host"), request.user, pk=pk)
    operations = Operation.objects.filter(lock_key=network.lock_key).select_related("actor").defer("log")[:10]
    context = {
        "network": network,
        "operations": operations,
        "can_admin": access.can(request.user, "admin", network.host),
        "info": parse_network_xml(network.xml),
    }
    if getattr(request, "htmx", False):  # the state panel, read again when an operation ends
        return render(request, "networks/detail.html#state", context)
    return render(request, "networks/detail.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@audited_post(NetworkOp.DEFINE)
def network_create(request: HttpRequest) -> HttpResponse:
    access.require_post_role(request, "admin", None)
    form = host_form(DefineNetworkForm, request)
    response, status = queue_from_form(
        request,
        form,
        lambda data: services.define_network(
            actor=request.user,
            ctx=RequestContext.from_request(request),
            host=data["host"],
            name=data["name"],
            bridge=data["bridge"],
            forward_mode=data["forward_mode"],
            address=data["address"],
            netmask=data["netmask"],
            dhcp_start=data["dhcp_start"],
            dhcp_end=data["dhcp_end"],
        ),
    )
    if response is not None:
        return response
    return render(request, "networks/create.html", {"form": form}, status=status)


@require_POST
@login_required
@audited_post(NetworkAction.ACTION)
def network_action(request: HtmxHttpRequest, pk: int, action: str) -> HttpResponse:
    network = access.get_for_user(Network.objects.select_related("host"), request.user, pk=pk)
    access.require_post_role(request, "admin", network.host)
    return answer_operation(
        request,
        lambda: services.network_action(
            actor=request.user,
            ctx=RequestContext.from_request(request),
            network=network,
            action=action,
            enabled=posted(NetworkActionForm, request)["enabled"],
        ),
        back=reverse("networks:detail", args=[pk]),
        # Undefine: the network goes away, so its operation's page is where to watch it end.
        follow=action == "undefine",
    )


@require_POST
@login_required
@audited_post(NetworkOp.DHCP_HOST)
def network_reservation(request: HtmxHttpRequest, pk: int, change: str) -> HttpResponse:
    """Add (mac, ip, name) or remove (mac) a DHCP host reservation."""
    network = access.get_for_user(Network.objects.select_related("host"), request.user, pk=pk)
    access.require_post_role(request, "admin", network.host)
    reservation = posted(ReservationForm, request)
    return answer_operation(
        request,
        lambda: services.change_reservation(
            actor=request.user,
            ctx=RequestContext.from_request(request),
            network=network,
            change=change,
            mac=reservation["mac"],
            ip=reservation["ip"],
            name=reservation["host_name"],
        ),
        back=reverse("networks:detail", args=[pk]),
        follow=True,
    )
