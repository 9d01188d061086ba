"""Container pages: they read the inventory; actions go through containers.services."""

from __future__ import annotations

from typing import cast

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.http import content_disposition_header, urlencode
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import HttpResponseStopPolling

from console import access
from console.decorators import audited_post
from console.errors import ServiceError
from console.forms import answer_operation, host_form, posted, queue_from_form, refusal_page
from console.htmx import HtmxHttpRequest
from console.models import Host, Operation
from console.operations import RequestContext
from console.query import one_of
from console.views import READ_KINDS, paginate
from containers import services
from containers.choices import Backend, ContainerAction, ContainerOp, DomainOp, State
from containers.forms import (
    AttachForm,
    AutostartGroupForm,
    ConfigKeysForm,
    ConfigTextForm,
    CopyForm,
    CreateContainerForm,
    DestroyForm,
    FilesForm,
    HookForm,
    LimitForm,
    MountForm,
    MountRootsForm,
    StopForm,
    SystemConfigForm,
)
from containers.hooks import HOOK_TYPES, HOOK_VARIABLES, HOOKS
from containers.limits import LIMIT_KEYS, LIMITS, describe_limit, same_value
from containers.lxc_config import (
    EDITABLE_KEYS,
    LxcConfig,
    SettingsRefused,
    config_hash,
    form_values,
    unified_diff,
    validate_config_text,
)
from containers.models import Container, FileBlob


@require_safe
@login_required
def container_list(request: HtmxHttpRequest) -> HttpResponse:
    qs = access.for_user(Container.objects.select_related("host", "origin"), request.user)
    filters = {k: request.GET.get(k, "").strip() for k in ("q", "host", "state")}
    if filters["q"]:
        qs = qs.filter(Q(name__icontains=filters["q"]) | Q(ips__icontains=filters["q"]))
    if filters["host"]:
        qs = qs.filter(host__slug=filters["host"])
    if one_of("state", filters["state"], State.values):
        qs = qs.filter(state=filters["state"])
    context = {
        "page": paginate(request, qs),
        "filters": filters,
        "states": State.choices,
        "hosts": access.for_user(Host.objects.all(), request.user),
        "can_create": access.can(request.user, "admin"),
        "has_role": access.role_on(request.user) is not None,
    }
    if request.htmx and request.htmx.target == "container-rows":
        return render(request, "containers/container_list.html#rows", context)
    return render(request, "containers/container_list.html", context)


@require_safe
@login_required
def container_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    container = (
        access.for_user(Container.objects.select_related("host", "origin"), request.user)
        .filter(pk=pk)
        .first()
    )
    if container is None:
        if request.htmx:
            return vanished_panel(request)
        raise Http404("no such container")
    if container.backend == Backend.LIBVIRT:
        from containers.libvirt.views import domain_detail

        return domain_detail(request, container)
    operations = (
        Operation.objects.filter(lock_key=container.lock_key)
        .select_related("actor", "host")
        .defer("log")[:10]
    )
    # Read only when the part rendered uses them: each live panel is one part of the page, and
    # several re-read at once after every operation.
    context = {
        "container": container,
        "destroy_blocked": SimpleLazyObject(lambda: destroy_blocked(container)),
        "graph": SimpleLazyObject(lambda: clone_graph(container)),
        "volume": SimpleLazyObject(lambda: store_volume(container)),
        "mounts": SimpleLazyObject(
            lambda: [m for m in LxcConfig(container.config_text).mount_entries if m.bind]
        ),
        "operations": operations,
        "active": next((op for op in operations if op.is_active), None),
        "can_operate": access.can(request.user, "operate", container.host),
        "can_admin": access.can(request.user, "admin", container.host),
    }
    # The state panel's read also answers the operations and the clone graph (out of band).
    partial = _PANELS.get(request.htmx.target or "") if request.htmx else None
    if partial:
        return render(request, f"containers/container_detail.html#{partial}", context)
    return render(request, "containers/container_detail.html", context)


# The page's live panels, by element id, and the part of the page each read renders (the forms
# keep what is typed in them: they are read again only when an operation ends).
_PANELS = {
    "container-state": "refresh",
    "container-forms": "forms",
    # Read by pages loaded before the operations and the graph came with the state panel.
    "container-ops": "ops",
    "container-graph": "graph",
}

# Operations after which a container's or domain's row is gone, and the word for what they did.
_REMOVALS: dict[str, str] = {ContainerOp.DESTROY: "destroyed", DomainOp.UNDEFINE: "undefined"}


def vanished_panel(request: HtmxHttpRequest) -> HttpResponse:
    """A live panel of a container or domain that no longer exists: what happened to it, read from
    the operations on its lock key (the page sends it, as ``lock``; only operations the user may
    see are read), and a link to the list. 286 stops the panel's polling."""
    from console.htmx import STOP_POLLING

    lock = request.GET.get("lock", "")
    operations = []
    if lock.startswith("container:"):
        operations = list(
            access.for_user(Operation.objects.select_related("actor", "host"), request.user)
            .filter(lock_key=lock)
            .defer("log")[:10]
        )
    if request.htmx.target == "container-ops":
        response = render(request, "containers/container_detail.html#ops", {"operations": operations})
        response.status_code = STOP_POLLING
        return response
    if request.htmx.target != "container-state":
        return HttpResponse("", status=STOP_POLLING)  # its forms have nothing left to act on
    response = _gone_notice(request, operations)
    # The recent operations, out of band as with every read of the state panel: the removal shows.
    ops = render(request, "containers/container_detail.html#ops_oob", {"operations": operations})
    response.content += ops.content
    return response


def _gone_notice(request: HtmxHttpRequest, operations: list[Operation]) -> HttpResponse:
    from console.htmx import gone

    if not operations:
        return gone(request, "This container or domain no longer exists (or you can no longer see it).")
    last = operations[0]
    word = "domain" if last.kind.startswith("libvirt.") else "container"
    name = last.target.rsplit("/", 1)[-1]
    removal = next((op for op in operations if op.kind in _REMOVALS and op.status == "succeeded"), None)
    if removal is None:
        return gone(
            request,
            f"The {word} {name} no longer exists on host {last.host.slug}.",
            "It was removed outside the console (virsh undefine, lxc-destroy), and the inventory dropped it.",
        )
    by = removal.actor.get_username() if removal.actor else "system"
    when = timezone.localtime(removal.finished_at).strftime("%H:%M:%S") if removal.finished_at else ""
    return gone(
        request,
        f"The {word} {name} was {_REMOVALS[removal.kind]}",
        f"by {by} (operation #{removal.pk}{', ' + when if when else ''}).",
    )


def destroy_blocked(container: Container) -> str:
    """Why destroying the container is refused whatever the user ticks (containers.services says
    the same): snapshots that need its rootfs. Empty when it can be destroyed."""
    names = list(container.copies.filter(origin_kind="snapshot").values_list("name", flat=True))
    return f"these snapshots depend on it: {', '.join(names)}; destroy them first" if names else ""


def store_volume(container: Container) -> dict | None:
    """The pool a container lives on and, on LVM or ZFS, its own volume or dataset as the agent
    last read the pool (one query; the page never asks the host)."""
    from storage.models import Pool

    pool = Pool.objects.filter(host=container.host, lxc_path=container.lxc_path).first()
    if pool is None:
        return None
    entry = None
    rootfs = container.rootfs or ""
    if rootfs.startswith("lvm:"):
        name = rootfs.rsplit("/", 1)[-1]
        entry = next((lv for lv in pool.details.get("lvs", []) if lv.get("name") == name), None)
    elif rootfs.startswith("zfs:"):
        name = rootfs.removeprefix("zfs:")
        entry = next((d for d in pool.details.get("datasets", []) if d.get("name") == name), None)
    return {"pool": pool, "entry": entry}


def clone_graph(container: Container) -> dict:
    """Where the container came from and what was copied from it, in two queries."""
    rows = {
        c.pk: c
        for c in Container.objects.filter(host=container.host).only(
            "pk", "name", "origin_id", "origin_kind", "state", "host_id"
        )
    }
    for c in rows.values():
        c.host = container.host  # their state badges read it (host offline): not one query each
    ancestors: list[Container] = []
    cursor = rows.get(container.pk)
    while cursor is not None and cursor.origin_id and len(ancestors) < 50:
        cursor = rows.get(cursor.origin_id)
        if cursor is not None:
            ancestors.append(cursor)
    children: dict[int, list[Container]] = {}
    for c in rows.values():
        if c.origin_id:
            children.setdefault(c.origin_id, []).append(c)

    def subtree(pk: int, depth: int = 0) -> list[dict]:
        if depth > 50:
            return []
        return [
            {"c": c, "children": subtree(c.pk, depth + 1)}
            for c in sorted(children.get(pk, []), key=lambda x: x.name)
        ]

    return {"ancestors": list(reversed(ancestors)), "descendants": subtree(container.pk)}


_require = access.require_post_role


@login_required
@audited_post(ContainerOp.CREATE)
def container_create(request: HtmxHttpRequest) -> HttpResponse:
    _require(request, "admin", None)
    form = host_form(CreateContainerForm, request)
    hosts = cast(forms.ModelChoiceField, form.fields["host"]).queryset
    assert hosts is not None  # host_form set it: the hosts the user sees
    # The LXC path choices are the chosen host's (the form's host, or ?host= from a pool's link).
    slug = form.data.get("host") or request.GET.get("host") or ""
    chosen = hosts.filter(slug=slug).first() if slug else None
    if chosen is not None and not form.is_bound:
        form.initial["host"] = chosen
    chosen = chosen or form.initial.get("host")
    paths = chosen.lxc_paths if chosen is not None else []
    cast(forms.ChoiceField, form.fields["lxc_path"]).choices = [
        ("", f"{paths[0]} (the host's default)" if paths else "the host's default"),
        *[(p, p) for p in paths[1:]],
    ]
    if not form.is_bound and request.GET.get("lxc_path") in paths[1:]:
        form.initial["lxc_path"] = request.GET["lxc_path"]
    # Choosing another host reads that host's LXC paths into the form (no reload, typed values kept).
    form.fields["host"].widget.attrs.update(
        {
            "hx-get": reverse("containers:create"),
            "hx-trigger": "change",
            "hx-target": "#lxc-path-field",
            "hx-swap": "outerHTML",
        }
    )
    if request.htmx and request.method == "GET":  # the host changed: its LXC paths
        return render(request, "containers/container_create.html#lxc-path", {"form": form})
    response, status = queue_from_form(
        request,
        form,
        lambda data: services.create_container(
            actor=request.user,
            ctx=RequestContext.from_request(request),
            host=data["host"],
            name=data["name"],
            template=data["template"],
            lxc_path=data["lxc_path"] or None,
            release=data["release"] or None,
            tarball=data["tarball"] or None,
            fssize=data["fssize"] or None,
        ),
    )
    if response is not None:
        return response
    return render(request, "containers/container_create.html", {"form": form}, status=status)


_SIMPLE_ACTIONS = {
    "start": services.start_container,
    "restart": services.restart_container,
    "freeze": services.freeze_container,
    "unfreeze": services.unfreeze_container,
}


@require_POST
@login_required
@audited_post(ContainerAction.ACTION)
def container_action(request: HtmxHttpRequest, pk: int, action: str) -> HttpResponse:
    container = access.get_for_user(Container.objects.select_related("host"), request.user, pk=pk)
    _require(request, "operate", container.host)
    if action not in (*_SIMPLE_ACTIONS, "stop", "copy", "attach"):
        return HttpResponse(status=404)
    ctx = RequestContext.from_request(request)

    def start() -> Operation:
        if action in _SIMPLE_ACTIONS:
            return _SIMPLE_ACTIONS[action](actor=request.user, ctx=ctx, container=container)
        if action == "stop":
            form = StopForm(request.POST)
            if not form.is_valid():
                raise ServiceError("the stop timeout must be a whole number of seconds between 0 and 3600")
            data = form.cleaned_data
            return services.stop_container(
                actor=request.user, ctx=ctx, container=container, timeout=data["timeout"], force=data["force"]
            )
        if action == "copy":
            data = _valid(CopyForm(request.POST))
            return services.copy_container(
                actor=request.user,
                ctx=ctx,
                container=container,
                new_name=data["new_name"],
                snapshot=data["snapshot"],
                new_lxc_path=data["lxc_path"] or None,
            )
        data = _valid(AttachForm(request.POST))
        return services.attach_command(
            actor=request.user,
            ctx=ctx,
            container=container,
            command=data["command"],
            timeout=data["timeout"] or 60,
        )

    return answer_operation(request, start, back=reverse("containers:detail", args=[pk]))


def _valid(form) -> dict:
    """The cleaned data of a small action form, or its errors as one refusal."""
    if not form.is_valid():
        raise ServiceError("; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()))
    return form.cleaned_data


@login_required
@audited_post(ContainerOp.DESTROY)
def container_destroy(request: HttpRequest, pk: int) -> HttpResponse:
    container = access.get_for_user(Container.objects.select_related("host"), request.user, pk=pk)
    _require(request, "admin", container.host)
    form = DestroyForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and form.cleaned_data["confirm"] != container.name:
        form.add_error("confirm", f"type {container.name} exactly to confirm")
    response, status = queue_from_form(
        request,
        form,
        lambda data: services.destroy_container(
            actor=request.user,
            ctx=RequestContext.from_request(request),
            container=container,
            stop_first=data["stop_first"],
        ),
    )
    if response is not None:
        return response
    dependants = container.copies.filter(origin_kind="snapshot")
    return render(
        request,
        "containers/container_destroy.html",
        {"container": container, "form": form, "dependants": dependants},
        status=status,
    )


@login_required
@audited_post(ContainerAction.CONFIG)
def container_config(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The config file as the agent last read it; key form (admins) and raw editor with a diff."""
    container = access.get_for_user(Container.objects.select_related("host"), request.user, pk=pk)
    _require(request, "admin", container.host)
    config = LxcConfig(container.config_text)
    shown = form_values(config)
    context: dict = {
        "container": container,
        "keys": _settings_fields(shown),
        "odd_groups": [g for g in config.groups if "," in g],
        "can_admin": access.can(request.user, "admin", container.host),
        "base_hash": config_hash(container.config_text),
        "raw_text": container.config_text,
    }

    def page(refusal: ServiceError | None = None, status: int = 200) -> HttpResponse:
        if refusal is not None and "error" not in context:
            context["error"] = refusal.message
        return render(
            request,
            "containers/container_config.html",
            context,
            status=refusal.status_code if refusal else status,
        )

    if request.method != "POST":
        return page()
    ctx = RequestContext.from_request(request)
    data = posted(ConfigTextForm, request)
    mode = data["mode"]
    if mode == "keys":
        form = ConfigKeysForm(request.POST)
        values = form.values() if form.is_valid() else {}

        def keys_page(refusal: ServiceError | None) -> HttpResponse:
            if isinstance(refusal, SettingsRefused):
                context.update(
                    keys=_settings_fields({**shown, **values}, refusal.errors),
                    error=_refusal_summary(refusal.errors),
                )
            elif refusal is None:
                context["notice"] = "Nothing to save: every field has the value already in the config."
            return page(refusal)

        return answer_operation(
            request,
            lambda: services.set_config_values(
                actor=request.user, ctx=ctx, container=container, values=values
            ),
            page=keys_page,
            follow=True,
        )
    if mode not in ("preview", "save"):
        return HttpResponse("unknown form", status=400)

    def text_page(refusal: ServiceError | None) -> HttpResponse:
        context["raw_text"] = data["text"] if "text" in request.POST else container.config_text
        return page(refusal)

    if mode == "save":
        return answer_operation(
            request,
            lambda: services.replace_config(
                actor=request.user,
                ctx=ctx,
                container=container,
                text=data["text"],
                base_hash=data["base_hash"],
            ),
            page=text_page,
            follow=True,
        )
    try:
        text = validate_config_text(data["text"])
    except ServiceError as exc:
        return text_page(exc)
    context.update(
        raw_text=text,
        base_hash=data["base_hash"],
        diff=unified_diff(container.config_text, text, f"{container.name}/config"),
    )
    return page()


def _refusal_summary(errors: dict[str, str]) -> str:
    """The alert above a refused Settings form: each message is beside its field, so it is not
    said again here; only a key the form has no field for is."""
    fields = {k.key for k in EDITABLE_KEYS}
    unplaced = [message for key, message in errors.items() if key not in fields]
    marked = len(errors) - len(unplaced)
    plural = "s" if marked != 1 else ""
    summary = [f"{marked} value{plural} refused: see the marked field{plural}"] if marked else []
    return "; ".join(summary + unplaced)


def _settings_fields(values: dict[str, str], errors: dict[str, str] | None = None) -> list[tuple]:
    """The Settings form's rows: (key spec, value shown, error)."""
    errors = errors or {}
    return [(k, values.get(k.key, ""), errors.get(k.key, "")) for k in EDITABLE_KEYS]


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@audited_post(ContainerAction.FILES)
def container_files(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Browse a running container's filesystem: each listing or download is an audited read run
    by the agent, asked for with a POST (CSRF-checked). A GET only shows: a path to list, or
    with ``op`` a read this user made earlier, so another site sending the browser here
    (a link, a redirect, an image) makes no read in the user's name."""
    container = access.get_for_user(Container.objects.select_related("host"), request.user, pk=pk)
    if not access.can(request.user, "operate", container.host):
        raise PermissionDenied("browsing a container's files needs the operator role on this host")
    context: dict = {"container": container, "path": request.GET.get("path", "/"), "op": None, "error": None}
    if request.method == "POST":
        data = posted(FilesForm, request)
        ask = services.read_container_file if data["download"] else services.browse_files
        ctx = RequestContext.from_request(request)

        def refused_read(refusal: ServiceError | None) -> HttpResponse:
            context.update(path=data["path"], error=refusal.message if refusal else None)
            status = refusal.status_code if refusal else 200
            return render(request, "containers/container_files.html", context, status=status)

        def show_read(op: Operation) -> HttpResponse:
            query = urlencode({"path": op.params["path"], "op": op.pk})
            response = redirect(f"{reverse('containers:files', args=[container.pk])}?{query}")
            response.status_code = 303  # the browser GETs the page that shows this read
            return response

        return answer_operation(
            request,
            lambda: ask(actor=request.user, ctx=ctx, container=container, path=data["path"]),
            page=refused_read,
            accepted=show_read,
        )
    raw = request.GET.get("op", "")
    if raw:
        op_pk = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 12 else 0
        context["op"] = get_object_or_404(
            Operation,
            pk=op_pk,
            kind__in=READ_KINDS,
            lock_key__startswith=container.lock_key + ":read:",
            actor=request.user,
        )
        context["path"] = context["op"].params.get("path", "/")
    return render(request, "containers/container_files.html", context)


@require_safe
@login_required
def container_files_result(request: HtmxHttpRequest, pk: int, op_pk: int) -> HttpResponse:
    container = access.get_for_user(Container.objects.select_related("host"), request.user, pk=pk)
    op = get_object_or_404(
        Operation, pk=op_pk, lock_key__startswith=container.lock_key + ":read:", actor=request.user
    )
    response = render(request, "containers/container_files.html#result", {"container": container, "op": op})
    if op.is_terminal and request.htmx:
        return HttpResponseStopPolling(response.content)
    return response


@require_safe
@login_required
def container_file_blob(request: HttpRequest, pk: int, op_pk: int) -> HttpResponse:
    """The bytes a finished read operation fetched; only for the user who asked for them."""
    container = access.get_for_user(Container.objects.select_related("host"), request.user, pk=pk)
    blob = get_object_or_404(
        FileBlob,
        operation__pk=op_pk,
        operation__kind=ContainerOp.FILES_READ,
        operation__lock_key__startswith=container.lock_key + ":read:",
        operation__actor=request.user,
    )
    response = HttpResponse(bytes(blob.content), content_type="application/octet-stream")
    filename = blob.path.rstrip("/").rsplit("/", 1)[-1] or "file"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@audited_post(ContainerAction.LIMIT)
def container_limits(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """cgroup limits: saved (config) next to live (read back by the agent), differences marked."""
    container = access.get_for_user(Container.objects.select_related("host"), request.user, pk=pk)
    _require(request, "admin", container.host)
    saved = LxcConfig(container.config_text).cgroup_limits
    keys = dict.fromkeys([*(k.key for k in LIMIT_KEYS), *saved])
    rows = []
    for key in keys:
        live = container.cgroup_live.get(key) if container.cgroup_live else None
        rows.append(
            {
                "key": key,
                "spec": LIMITS.get(key),
                "saved": saved.get(key),
                "saved_shown": describe_limit(key, saved.get(key)),
                "live": live,
                "live_shown": describe_limit(key, live),
                "differs": container.is_running
                and key in saved
                and not same_value(key, saved.get(key), live),
            }
        )

    def page(refusal: ServiceError | None = None) -> HttpResponse:
        context = {
            "container": container,
            "rows": rows,
            "limit_keys": LIMIT_KEYS,
            "posted": request.POST if request.method == "POST" else None,
            "can_admin": access.can(request.user, "admin", container.host),
        }
        return refusal_page(request, "containers/container_limits.html", context, refusal)

    if request.method != "POST":
        return page()
    data = posted(LimitForm, request)
    if data["remove"]:
        return answer_operation(
            request,
            lambda: services.remove_limit(
                actor=request.user,
                ctx=RequestContext.from_request(request),
                container=container,
                key=data["remove"],
            ),
            page=page,
            follow=True,
        )
    return answer_operation(
        request,
        lambda: services.set_limit(
            actor=request.user,
            ctx=RequestContext.from_request(request),
            container=container,
            key=data["key"],
            value=data["value"],
            apply_live=data["apply_live"],
            persist=data["persist"],
            persist_if_refused=data["persist_if_refused"],
        ),
        page=page,
        follow=True,
    )


@login_required
@audited_post(ContainerOp.HOST_AUTOSTART)
def host_autostart(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The host's autostart containers as ``lxc-autostart --list [--group G | --all]`` lists them."""
    host = access.get_for_user(Host.objects.all(), request.user, slug=slug)
    _require(request, "operate", host)
    chosen = AutostartGroupForm(request.POST if request.method == "POST" else request.GET)
    chosen.is_valid()  # text and a flag: always
    group: str = chosen.cleaned_data["group"].strip()
    all_groups: bool = chosen.cleaned_data["all"]

    def page(refusal: ServiceError | None = None) -> HttpResponse:
        plan = services.autostart_plan(host, group=group or None, all_groups=all_groups)
        elapsed = 0
        timeline = []
        for c in plan:
            timeline.append({"c": c, "at": elapsed})
            elapsed += c.start_delay
        groups = sorted(
            {
                g
                for gs in Container.objects.filter(host=host, autostart=True).values_list("groups", flat=True)
                for g in gs
            }
        )
        context = {
            "host": host,
            "timeline": timeline,
            "group": group,
            "all_groups": all_groups,
            "groups": groups,
            "can_operate": access.can(request.user, "operate", host),
            "settings_boot_groups": settings.AUTOSTART_BOOT_GROUPS,
        }
        return refusal_page(request, "containers/host_autostart.html", context, refusal)

    if request.method != "POST":
        return page()
    return answer_operation(
        request,
        lambda: services.autostart_host(
            actor=request.user,
            ctx=RequestContext.from_request(request),
            host=host,
            group=group or None,
            all_groups=all_groups,
        ),
        page=page,
        follow=True,
    )


@login_required
@audited_post(ContainerAction.HOOK)
def container_hooks(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The nine hooks: scripts the console stored, paths configured elsewhere, and an editor (admins)."""
    container = access.get_for_user(Container.objects.select_related("host"), request.user, pk=pk)
    _require(request, "admin", container.host)
    stored = {h.hook_type: h for h in container.hooks.all()}
    configured = LxcConfig(container.config_text).hooks
    data = posted(HookForm, request) if request.method == "POST" else {"hook": "", "script": "", "remove": ""}
    editing = request.GET.get("hook") or data["hook"]
    default_script = '#!/bin/sh\n# runs as root on the host\necho "$LXC_HOOK_TYPE hook of $LXC_NAME"\n'

    def page(refusal: ServiceError | None = None) -> HttpResponse:
        context = {
            "container": container,
            "hooks": [
                {"type": h, "stored": stored.get(h.name), "configured": configured.get(h.name, [])}
                for h in HOOK_TYPES
            ],
            "variables": HOOK_VARIABLES,
            "editing": editing if editing in HOOKS else "",
            "script": data["script"] or (stored[editing].script if editing in stored else default_script),
            "can_admin": access.can(request.user, "admin", container.host),
        }
        return refusal_page(request, "containers/container_hooks.html", context, refusal)

    if request.method != "POST":
        return page()
    ctx = RequestContext.from_request(request)

    def start() -> Operation:
        if data["remove"]:
            return services.remove_hook(actor=request.user, ctx=ctx, container=container, hook_type=editing)
        return services.set_hook(
            actor=request.user, ctx=ctx, container=container, hook_type=editing, script=data["script"]
        )

    return answer_operation(request, start, page=page, follow=True)


@login_required
@audited_post(ContainerAction.MOUNT)
def container_mounts(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Bind mounts (lxc.mount.entry) from the host's allowed roots; they take effect at next start."""
    container = access.get_for_user(Container.objects.select_related("host"), request.user, pk=pk)
    _require(request, "admin", container.host)

    def page(refusal: ServiceError | None = None) -> HttpResponse:
        context = {
            "container": container,
            "entries": LxcConfig(container.config_text).mount_entries,
            "roots": container.host.mount_roots,
            "posted": request.POST if request.method == "POST" else None,
            "can_admin": access.can(request.user, "admin", container.host),
        }
        return refusal_page(request, "containers/container_mounts.html", context, refusal)

    if request.method != "POST":
        return page()
    ctx, data = RequestContext.from_request(request), posted(MountForm, request)

    def start() -> Operation:
        if data["remove"]:
            return services.remove_mount(
                actor=request.user, ctx=ctx, container=container, entry=data["remove"]
            )
        return services.add_mount(
            actor=request.user,
            ctx=ctx,
            container=container,
            source=data["source"],
            target=data["target"],
            read_only=data["read_only"],
            create_target=data["create_target"],
        )

    return answer_operation(request, start, page=page, follow=True)


@require_POST
@login_required
@audited_post(ContainerOp.HOST_MOUNT_ROOTS)
def host_mount_roots(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The allowed roots, checked and saved by the host's agent: the operation's card answers in
    the page (what was typed stays in the box), a refusal too."""
    host = access.get_for_user(Host.objects.all(), request.user, slug=slug)
    _require(request, "admin", host)
    data = posted(MountRootsForm, request)
    roots = [r for r in data["roots"].splitlines() if r.strip()]
    return answer_operation(
        request,
        lambda: services.set_mount_roots(
            actor=request.user,
            ctx=RequestContext.from_request(request),
            host=host,
            roots=roots,
            allow_system=data["allow_system"],
        ),
        back=reverse("host-detail", args=[host.slug]),
    )


@require_POST
@login_required
@audited_post(ContainerOp.HOST_LXC_CONF)
def host_lxc_conf(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Set one of the lxc-* tools' system defaults (lxc-config) on the host. The form posts with
    htmx: a refusal answers beside it (what was typed stays in the form), an accepted change goes
    to the operation's page."""
    host = access.get_for_user(Host.objects.all(), request.user, slug=slug)
    _require(request, "admin", host)
    return answer_operation(
        request,
        lambda: services.set_lxc_system_config(
            actor=request.user,
            ctx=RequestContext.from_request(request),
            host=host,
            **posted(SystemConfigForm, request),
        ),
        back=reverse("host-detail", args=[host.slug]),
        follow=True,
    )


@require_safe
@login_required
def container_terminal(request: HttpRequest, pk: int) -> HttpResponse:
    """A terminal in the page (xterm.js over a websocket) to a native container or a libvirt domain."""
    container = access.get_for_user(Container.objects.select_related("host"), request.user, pk=pk)
    if not access.can(request.user, "operate", container.host):
        raise PermissionDenied("a terminal needs the operator role on this host")
    response = render(request, "containers/container_terminal.html", {"container": container})
    # xterm.js positions its rows with inline styles: allowed on this page only, scripts stay 'self'.
    response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY.replace(
        "style-src 'self'", "style-src 'self' 'unsafe-inline'"
    )
    return response


@require_POST
@login_required
@audited_post(ContainerAction.TERMINAL_TICKET)
def container_terminal_ticket(request: HttpRequest, pk: int) -> HttpResponse:
    """A single-use websocket ticket for this user and container, valid a few seconds."""
    from containers import terminal

    container = access.get_for_user(Container.objects.select_related("host"), request.user, pk=pk)
    _require(request, "operate", container.host)
    origin = f"{request.scheme}://{request.get_host()}"
    try:
        ticket = terminal.issue_ticket(
            actor=request.user,
            ctx=RequestContext.from_request(request),
            container=container,
            origin=origin,
            session_key=request.session.session_key,
        )
    except ServiceError as exc:
        return JsonResponse({"error": exc.message}, status=exc.status_code)
    return JsonResponse({"ticket": ticket.token, "path": f"/ws/terminal/{ticket.token}/"})
