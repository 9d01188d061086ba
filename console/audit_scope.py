"""Who may read which audit rows, and which host a request refused before its service was aimed at.

Reading rules (the audit page and both exports use :func:`visible_rows`):

- superusers read every row;
- a team **admin** of a host reads every row of that host, refusals of other users included
  (who probed what is an admin's business);
- a **viewer** or **operator** of a host reads that host's rows except other users' refusals;
- everyone reads their own rows.

A refusal written before a service (403, 404, a form that does not parse) is stored with the host
the request was aimed at (:func:`aimed_host`), so the admins of that host see it. The host column
of a row is shown only to users who may see that host (:func:`shown_host`): a 404 row must not tell
an outsider on which host the object they guessed lives.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db.models import Q, Subquery

from console.access import _active, hosts_with_role
from console.choices import AuditResult
from console.models import Host

# URL namespace (and, where one namespace names several kinds, the url name's first word) ->
# the model whose ``pk`` URL argument names the object, and so its host.
_OBJECT_MODELS = {
    "containers": "containers.Container",
    "networks": "networks.Network",
    "storage:loop": "storage.LoopDevice",
    "storage:pool": "storage.Pool",
    ":operation": "console.Operation",
}


def _host_q(host_ids: set[int] | None) -> Q:
    if host_ids is None:
        return Q(host__isnull=False)
    return Q(host_id__in=sorted(host_ids))


def visible_rows(user: Any) -> Q | None:
    """The filter of the audit rows ``user`` may read; None: every row (superuser)."""
    if not _active(user):
        return Q(pk__in=[])
    if user.is_superuser:
        return None
    rows = Q(actor_id=user.pk)
    admin_hosts = hosts_with_role(user, "admin")
    if admin_hosts is None:
        return rows | _host_q(None)
    if admin_hosts:
        rows |= _host_q(admin_hosts)
    member_hosts = hosts_with_role(user, "view")
    if member_hosts is None or member_hosts - admin_hosts:
        others = None if member_hosts is None else member_hosts - admin_hosts
        # Named results, not "not refused": the count is then read from the (host, result) index.
        rows |= _host_q(others) & Q(result__in=[r for r in AuditResult.values if r != AuditResult.REFUSED])
    return rows


def shown_host(user: Any) -> Q | None:
    """Rows whose host ``user`` may see (None: all); other rows are shown without their host."""
    if _active(user) and user.is_superuser:
        return None
    return _host_q(hosts_with_role(user, "view"))


def aimed_host(request: Any, kwargs: dict[str, Any]) -> Host | None:
    """The host a request was aimed at, from its URL arguments, or None when they name none.

    ``slug`` names a host; ``pk`` names an object of the URL's app (a container, network, loop
    device, pool or operation), whose host is read; ``op_pk`` names an operation. Create forms
    name their host in a ``host`` field. One query at most.
    """
    slug = kwargs.get("slug")
    if isinstance(slug, str):
        return Host.objects.filter(slug=slug).first()
    match = getattr(request, "resolver_match", None)
    namespace = getattr(match, "namespace", "") or ""
    url_name = getattr(match, "url_name", "") or ""
    label = _OBJECT_MODELS.get(f"{namespace}:{url_name.split('-')[0]}") or _OBJECT_MODELS.get(namespace)
    pk = kwargs.get("pk")
    if label and isinstance(pk, int):
        model = apps.get_model(label)
        return Host.objects.filter(pk=Subquery(model.objects.filter(pk=pk).values("host_id")[:1])).first()
    if isinstance(kwargs.get("op_pk"), int):
        from console.models import Operation

        ops = Operation.objects.filter(pk=kwargs["op_pk"]).values("host_id")[:1]
        return Host.objects.filter(pk=Subquery(ops)).first()
    if not kwargs and request.method == "POST":
        slug = request.POST.get("host", "")
        if slug and len(slug) <= 63:
            return Host.objects.filter(slug=slug).first()
    return None
