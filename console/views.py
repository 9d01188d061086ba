"""Pages of the console core: hosts, operations, audit log. They read the database only."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django_htmx.http import HttpResponseStopPolling

from console.choices import AuditResult, OperationStatus
from console.models import AuditEvent, Host, Operation


def paginate(request: HttpRequest, queryset, per_page: int | None = None):  # noqa: ANN001
    paginator = Paginator(queryset, per_page or settings.PAGE_SIZE)
    return paginator.get_page(request.GET.get("page"))


@login_required
def host_list(request: HttpRequest) -> HttpResponse:
    hosts = Host.objects.annotate(
        n_containers=Count("containers", distinct=True),
        n_running=Count("containers", filter=Q(containers__state="RUNNING"), distinct=True),
    )
    return render(request, "console/host_list.html", {"hosts": hosts})


@login_required
def host_detail(request: HttpRequest, slug: str) -> HttpResponse:
    host = get_object_or_404(Host, slug=slug)
    operations = host.operations.select_related("actor")[:10]
    return render(request, "console/host_detail.html", {"host": host, "operations": operations})


@login_required
def operation_list(request: HttpRequest) -> HttpResponse:
    qs = Operation.objects.select_related("host", "actor")
    status = request.GET.get("status", "")
    if status in OperationStatus.values:
        qs = qs.filter(status=status)
    host = request.GET.get("host", "")
    if host:
        qs = qs.filter(host__slug=host)
    q = request.GET.get("q", "").strip()
    if q:
        qs = qs.filter(Q(target__icontains=q) | Q(kind__icontains=q))
    page = paginate(request, qs.defer("log"))
    context = {
        "page": page,
        "statuses": OperationStatus.choices,
        "hosts": Host.objects.values_list("slug", flat=True),
        "filters": {"status": status, "host": host, "q": q},
    }
    if request.htmx and request.htmx.target == "operation-rows":
        return render(request, "console/operation_list.html#rows", context)
    return render(request, "console/operation_list.html", context)


@login_required
def operation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    op = get_object_or_404(Operation.objects.select_related("host", "actor"), pk=pk)
    return render(request, "console/operation_detail.html", {"op": op})


@login_required
def operation_card(request: HttpRequest, pk: int) -> HttpResponse:
    """The polled partial: progress, status, transcript tail; stops polling when terminal."""
    op = get_object_or_404(Operation.objects.select_related("host", "actor"), pk=pk)
    response = render(
        request, "console/_operation.html", {"op": op, "full_log": request.GET.get("full") == "1"}
    )
    if op.is_terminal and request.htmx:
        stop = HttpResponseStopPolling(response.content)
        stop["HX-Trigger"] = "operation-finished"
        return stop
    return response


@login_required
def audit_list(request: HttpRequest) -> HttpResponse:
    qs = AuditEvent.objects.select_related("operation", "host")
    filters = {k: request.GET.get(k, "").strip() for k in ("actor", "action", "host", "result", "q")}
    if filters["actor"]:
        qs = qs.filter(actor_name=filters["actor"])
    if filters["action"]:
        qs = qs.filter(action__startswith=filters["action"])
    if filters["host"]:
        qs = qs.filter(host__slug=filters["host"])
    if filters["result"] in AuditResult.values:
        qs = qs.filter(result=filters["result"])
    if filters["q"]:
        qs = qs.filter(Q(target__icontains=filters["q"]) | Q(message__icontains=filters["q"]))
    context = {
        "page": paginate(request, qs),
        "filters": filters,
        "results": AuditResult.choices,
        "hosts": Host.objects.values_list("slug", flat=True),
    }
    if request.htmx and request.htmx.target == "audit-rows":
        return render(request, "console/audit_list.html#rows", context)
    return render(request, "console/audit_list.html", context)
