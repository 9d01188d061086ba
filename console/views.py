"""Pages of the console core: hosts, operations, audit log. They read the database only."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import Case, Count, F, Q, QuerySet, When
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.functional import cached_property
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import HttpResponseStopPolling

from console import services
from console.access import can, for_user, get_for_user
from console.admin_forms import HostUpdateForm, TeamChangeForm, TeamCreateForm
from console.audit_export import export_response
from console.audit_scope import shown_host, visible_rows
from console.choices import AuditResult, ConsoleAction, OperationStatus
from console.decorators import audited_post
from console.errors import ServiceError
from console.forms import posted, refused
from console.htmx import HtmxHttpRequest
from console.models import AuditEvent, Host, Operation, RoleBinding, Team
from console.operations import RequestContext
from console.query import BadParameter, moment, one_of, page_number, whole_number
from console.subjects import subject_of
from containers.choices import ContainerOp, DomainOp
from containers.mounts import system_directories
from networks.choices import NetworkOp
from storage.choices import StorageOp

# File-browser reads: audited operations, one per click, hidden from operation lists unless asked.
READ_KINDS = (ContainerOp.FILES_LIST, ContainerOp.FILES_READ)
# Every kind of operation, for the Operations list's filter.
OPERATION_KINDS = [
    (kind.value, f"{kind.value} ({kind.label})")
    for choices in (ContainerOp, DomainOp, StorageOp, NetworkOp)
    for kind in choices
]


# Lists count their rows up to this many (and then say "more than"): a full COUNT(*) of 100,000
# audit rows, or of every operation, on every page and every refresh cost more than the page.
COUNT_LIMIT = 1000


class CappedPaginator(Paginator):
    """A paginator that counts at most ``limit`` rows (``more``: there are more than that).

    The count reads up to ``limit`` + 1 rows in any order (no sort, stops early), so its cost does
    not grow with the table; the pages up to ``limit`` are numbered as usual."""

    def __init__(self, queryset: QuerySet, per_page: int, limit: int) -> None:
        super().__init__(queryset, per_page)
        self.queryset = queryset
        self.limit = limit
        self.more = False

    @cached_property
    def count(self) -> int:
        # Only the key: a row's other columns (annotations too) would be read from the table.
        counted = self.queryset.order_by().values("pk")[: self.limit + 1].count()
        self.more = counted > self.limit
        return min(counted, self.limit)

    def page(self, number: int | str) -> Page:
        """The page's keys first (a deep page's offset is skipped in an index, not by reading and
        joining every row before it), then its rows by key, in the same order. Every page alike,
        the first too: the number of queries does not depend on which page exists."""
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = min(bottom + self.per_page, self.count)
        keys = list(self.queryset.values_list("pk", flat=True)[bottom:top])
        rows = {row.pk: row for row in self.queryset.filter(pk__in=keys)}
        return Page([rows[key] for key in keys if key in rows], number, self)


def paginate(request: HttpRequest, queryset, per_page: int | None = None):
    """The requested page (a bad ``page`` is a 400; past the last page, the last page).

    Rows are counted up to COUNT_LIMIT, or far enough past the requested page that ten more pages
    are offered after it, so a deep page is reachable page by page and the count stays cheap."""
    per_page = per_page or settings.PAGE_SIZE
    number = page_number(request)
    limit = max(COUNT_LIMIT, -(-(number + 10) * per_page // COUNT_LIMIT) * COUNT_LIMIT)
    return CappedPaginator(queryset, per_page, limit).get_page(number)


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@audited_post(ConsoleAction.HOST_ADD)
def host_list(request: HttpRequest) -> HttpResponse:
    """The Hosts page; its POST is a superuser adding a host (console.host_views.add_host)."""
    if request.method == "POST":
        from console.host_views import add_host

        return add_host(request)
    return host_list_page(request)


def host_list_page(
    request: HttpRequest,
    *,
    add_errors: dict[str, str] | None = None,
    add_values: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The Hosts page; a superuser's "Add a host" form refused shows its error and what was typed."""
    hosts = for_user(Host.objects.all(), request.user).annotate(
        n_containers=Count("containers", distinct=True),
        n_running=Count("containers", filter=Q(containers__state="RUNNING"), distinct=True),
    )
    context = {
        "hosts": hosts,
        "add_errors": add_errors or {},
        "add_values": {"slug": "", "name": "", "hours": "24", **(add_values or {})},
    }
    return render(request, "console/host_list.html", context, status=status)


@require_safe
@login_required
def host_monitor(request: HttpRequest, slug: str) -> HttpResponse:
    """State changes of the host's LXC containers as lxc-monitor prints them, live (the page's
    event stream brings each line; nothing is stored)."""
    host = get_for_user(Host.objects.all(), request.user, slug=slug)
    return render(request, "console/host_monitor.html", {"host": host})


@require_safe
@login_required
def host_detail(request: HttpRequest, slug: str) -> HttpResponse:
    host = get_for_user(Host.objects.all(), request.user, slug=slug)
    operations = host.operations.exclude(kind__in=READ_KINDS).select_related("actor")[:10]
    waiting = dict(
        host.operations.filter(status__in=(OperationStatus.PENDING, OperationStatus.RUNNING))
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
    )
    context = {
        "host": host,
        "operations": operations,
        "can_admin": can(request.user, "admin", host),
        "can_operate": can(request.user, "operate", host),
        "pending": waiting.get(OperationStatus.PENDING, 0),
        "running": waiting.get(OperationStatus.RUNNING, 0),
        "system_roots": system_directories(host.mount_roots),
    }
    return render(request, "console/host_detail.html", context)


@require_safe
@login_required
def operation_list(request: HtmxHttpRequest) -> HttpResponse:
    qs = for_user(Operation.objects.select_related("host", "actor"), request.user)
    status = one_of("status", request.GET.get("status", ""), OperationStatus.values)
    if status:
        qs = qs.filter(status=status)
    host = request.GET.get("host", "")
    if host:
        qs = qs.filter(host__slug=host)
    q = request.GET.get("q", "").strip()
    if q:
        qs = qs.filter(Q(target__icontains=q) | Q(kind__icontains=q))
    kind = one_of("kind", request.GET.get("kind", ""), [k for k, _ in OPERATION_KINDS])
    if kind:
        qs = qs.filter(kind=kind)
    by = request.GET.get("by", "").strip()[:150]
    if by == "system":
        qs = qs.filter(actor__isnull=True)
    elif by:
        qs = qs.filter(actor__username=by)
    # "1" (not True) in the filters, so the pagination links carry it as the form sends it.
    reads = one_of("reads", request.GET.get("reads", ""), ("1",))
    if not reads:
        qs = qs.exclude(kind__in=READ_KINDS)
    page = paginate(request, qs.defer("log"))
    context = {
        "page": page,
        "statuses": OperationStatus.choices,
        "hosts": for_user(Host.objects.all(), request.user).values_list("slug", flat=True),
        "kinds": OPERATION_KINDS,
        "filters": {"status": status, "host": host, "q": q, "reads": reads, "kind": kind, "by": by},
    }
    if request.htmx and request.htmx.target == "operation-rows":
        return render(request, "console/operation_list.html#rows", context)
    return render(request, "console/operation_list.html", context)


@require_safe
@login_required
def operation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    op = get_for_user(Operation.objects.select_related("host", "actor"), request.user, pk=pk)
    context = {"op": op, "subject": subject_of(op)}
    target = request.headers.get("HX-Target", "")
    if request.headers.get("HX-Request") and target in ("operation-crumbs", "operation-details"):
        # Read again when the operation ended: the subject a define made exists now.
        return render(request, f"console/operation_detail.html#{target.removeprefix('operation-')}", context)
    return render(request, "console/operation_detail.html", context)


@require_safe
@login_required
def operation_card(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The polled partial: progress, status, transcript tail; stops polling when terminal."""
    op = get_for_user(Operation.objects.select_related("host", "actor"), request.user, pk=pk)
    response = render(
        request,
        "console/_operation.html",
        {"op": op, "full_log": request.GET.get("full") == "1", "refreshed": True},
    )
    if op.is_terminal and request.htmx:
        stop = HttpResponseStopPolling(response.content)
        stop["HX-Trigger"] = "operation-finished"
        return stop
    return response


AUDIT_FILTERS = ("actor", "team", "action", "host", "result", "q", "since", "until")


def _audit_queryset(request: HttpRequest, host_slugs: dict[int, str]) -> tuple[QuerySet, dict[str, str]]:
    """Audit rows the user may read (console.audit_scope), filtered by the query string.

    ``host_slugs`` names the hosts the user may see; a row's ``shown_host_id`` is its host only
    if it is one of them (a refused guess at another host's object is the guesser's own row, but
    must not tell them where the object lives). No join: the count reads indexes only.
    """
    qs = AuditEvent.objects.all()
    rows = visible_rows(request.user)
    if rows is not None:
        qs = qs.filter(rows)
    shown = shown_host(request.user)
    qs = qs.annotate(
        shown_host_id=F("host_id") if shown is None else Case(When(shown, then=F("host_id")), default=None)
    )
    filters = {k: request.GET.get(k, "").strip() for k in AUDIT_FILTERS}
    one_of("result", filters["result"], AuditResult.values)
    since = moment("since", filters["since"])
    until = moment("until", filters["until"], end_of_day=True)
    if filters["actor"]:
        qs = qs.filter(actor_name=filters["actor"])
    if filters["team"]:
        members = get_user_model().objects.filter(console_teams__name=filters["team"]).values("pk")
        qs = qs.filter(actor_id__in=members)
    if filters["action"]:
        qs = qs.filter(action__startswith=filters["action"])
    if filters["host"]:
        # On the column (its index), within the hosts the user may see.
        ids = [pk for pk, slug in host_slugs.items() if slug == filters["host"]]
        qs = qs.filter(host_id__in=ids)
    if filters["result"]:
        qs = qs.filter(result=filters["result"])
    if filters["q"]:
        qs = qs.filter(Q(target__icontains=filters["q"]) | Q(message__icontains=filters["q"]))
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lte=until)
    return qs, filters


@require_safe
@login_required
def audit_list(request: HtmxHttpRequest) -> HttpResponse | StreamingHttpResponse:
    host_slugs = dict(for_user(Host.objects.all(), request.user).values_list("pk", "slug"))
    qs, filters = _audit_queryset(request, host_slugs)
    export = one_of("format", request.GET.get("format", ""), ("csv", "json"))
    if export:
        return export_response(request, qs, export, settings.AUDIT_EXPORT_MAX_ROWS, host_slugs)
    # The page shows the operation's status: its bulky fields stay in the database.
    qs = qs.select_related("operation").defer(
        "operation__log", "operation__commands", "operation__params", "operation__result", "operation__error"
    )
    page = paginate(request, qs)
    for event in page:
        event.host_slug = host_slugs.get(event.shown_host_id)
    context = {
        "page": page,
        "filters": filters,
        "results": AuditResult.choices,
        "hosts": sorted(host_slugs.values()),
        "teams": Team.objects.values_list("name", flat=True) if request.user.is_superuser else [],
        "export_query": urlencode({k: v for k, v in filters.items() if v}),
    }
    if request.htmx and request.htmx.target == "audit-rows":
        return render(request, "console/audit_list.html#rows", context)
    return render(request, "console/audit_list.html", context)


def _superuser_only(request: HttpRequest) -> None:
    """The team pages are shown to superusers only (their changes: the services decide)."""
    if not request.user.is_superuser:
        raise PermissionDenied("only superusers manage teams")


@login_required
@audited_post(ConsoleAction.TEAM)
def team_list(request: HttpRequest) -> HttpResponse:
    _superuser_only(request)
    error, status = None, 200
    if request.method == "POST":
        try:
            team = services.create_team(
                actor=request.user,
                ctx=RequestContext.from_request(request),
                name=posted(TeamCreateForm, request)["name"],
            )
        except ServiceError as exc:
            error, status = exc.message, exc.status_code
        else:
            return redirect("team-detail", pk=team.pk)
    teams = Team.objects.annotate(
        n_members=Count("members", distinct=True), n_bindings=Count("bindings", distinct=True)
    )
    return render(request, "console/team_list.html", {"teams": teams, "error": error}, status=status)


@login_required
@audited_post(ConsoleAction.TEAM)
def team_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _superuser_only(request)
    team = get_object_or_404(Team, pk=pk)
    error, status = None, 200
    if request.method == "POST":
        ctx = RequestContext.from_request(request)
        data = posted(TeamChangeForm, request)
        what = data["do"]
        try:
            if what == "add-member":
                services.add_member(actor=request.user, ctx=ctx, team=team, username=data["username"])
            elif what == "remove-member":
                services.remove_member(actor=request.user, ctx=ctx, team=team, username=data["username"])
            elif what == "grant":
                services.grant_role(
                    actor=request.user,
                    ctx=ctx,
                    team=team,
                    role=data["role"],
                    host_slugs=None if data["scope"] == "all" else data["hosts"],
                )
            elif what == "revoke":
                binding_id = whole_number("binding", data["binding"])
                binding = get_object_or_404(RoleBinding, pk=binding_id, team=team)
                services.revoke_role(actor=request.user, ctx=ctx, binding=binding)
            elif what == "delete":
                services.delete_team(actor=request.user, ctx=ctx, team=team)
                return redirect("team-list")
            else:
                return HttpResponse("unknown action", status=400)
        except ServiceError as exc:
            error, status = exc.message, exc.status_code
        except BadParameter as exc:
            error, status = str(exc), 400
        else:
            return redirect("team-detail", pk=team.pk)
    context = {
        "team": team,
        "members": team.members.order_by("username"),
        "bindings": team.bindings.prefetch_related("hosts"),
        "hosts": Host.objects.all(),
        "roles": RoleBinding.Role.choices,
        "error": error,
    }
    return render(request, "console/team_detail.html", context, status=status)


@require_safe
@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("containers:list")


@require_POST
@login_required
@audited_post(ConsoleAction.OPERATION_CANCEL)
def operation_cancel(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Cancel an operation (pending: at once; running: its agent ends the command); the answer
    is its card (htmx, from its page), a line above the list (htmx, from the Operations list) or
    its page."""
    op = get_for_user(Operation.objects.select_related("host", "actor"), request.user, pk=pk)
    try:
        services.cancel_operation(actor=request.user, ctx=RequestContext.from_request(request), op=op)
    except ServiceError as exc:
        return refused(request, exc, reverse("operation-detail", args=[op.pk]))
    op.refresh_from_db()
    done = (
        f"Operation #{op.pk} cancelled; its target is free."
        if op.status == OperationStatus.CANCELLED
        else f"Operation #{op.pk}: its agent is ending the running command."
    )
    if request.htmx and request.htmx.target == "operation-list-message":
        # From the Operations list: a line above the list, which then refreshes its rows.
        response = render(request, "console/_notice.html", {"message": done})
    elif request.htmx:
        response = render(request, "console/_operation.html", {"op": op})
    else:
        messages.success(request, done)
        return redirect("operation-detail", pk=op.pk)
    response["HX-Trigger"] = "operation-finished"
    return response


@require_POST
@login_required
@audited_post(ConsoleAction.HOST_UPDATE)
def host_update(request: HttpRequest, slug: str) -> HttpResponse:
    """Superusers only: the service says so (403) for anyone else who may see the host."""
    host = get_for_user(Host.objects.all(), request.user, slug=slug)
    try:
        services.update_host(
            actor=request.user,
            ctx=RequestContext.from_request(request),
            host=host,
            **posted(HostUpdateForm, request),
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
        return render(request, "console/_error.html", {"message": exc.message}, status=exc.status_code)
    messages.success(request, f"Host {host.slug} saved.")
    return redirect("host-detail", slug=host.slug)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400: a parameter that does not parse, with what was wrong (other 400s say less)."""
    message = str(exception) if isinstance(exception, BadParameter) else ""
    return render(request, "400.html", {"message": message}, status=400)
