"""View decorators shared by the apps."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from console.audit_scope import aimed_host
from console.choices import AuditResult
from console.models import Host
from console.operations import RequestContext, audit, audit_rows_of


def audited_post(action: str) -> Callable:
    """Every POST to the view leaves exactly one audit row.

    Services write the row of what they accept or refuse; when a POST ends without one (not
    allowed, object hidden, a form that does not parse, or a change that needs no service),
    this writes it: refused for an error status, succeeded otherwise.
    """

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method != "POST":
                return view(request, *args, **kwargs)
            target = " ".join(f"{k}={v}" for k, v in kwargs.items())
            try:
                response = view(request, *args, **kwargs)
            except (PermissionDenied, Http404, BadRequest) as exc:
                host = aimed_host(request, kwargs)
                _record(request, action, target, str(exc) or type(exc).__name__, ok=False, host=host)
                raise
            if not audit_rows_of(request):
                ok = response.status_code < 400
                host = aimed_host(request, kwargs)
                _record(request, action, target, f"HTTP {response.status_code}", ok=ok, host=host)
            return response

        wrapper.__dict__["audited_action"] = action  # read by record_refused_post
        return wrapper

    return decorate


def record_refused_post(request: HttpRequest, view: Callable, kwargs: dict, message: str) -> None:
    """The one audit row of a POST refused before its view ran (console.input_guard: a NUL).

    Under the view's audited_post action and target when it has one; otherwise as
    ``request.refused`` on the URL's name, never its arguments (a password link's token is one).
    """
    action = getattr(view, "audited_action", None)
    if action is not None:
        target = " ".join(f"{k}={v}" for k, v in kwargs.items())
    else:
        action, target = "request.refused", getattr(request.resolver_match, "view_name", "")
    # aimed_host looks up a posted "host" field: not when that field is what was refused.
    host = None if "\x00" in request.POST.get("host", "") else aimed_host(request, kwargs)
    _record(request, action, target, message, ok=False, host=host)


# Never copied into the audit trail: secrets and bulky bodies (their services record what matters).
_SECRET_FIELDS = {
    "csrfmiddlewaretoken",
    "text",
    "script",
    "password",
    "old_password",
    "new_password1",
    "new_password2",
    "token",
    "otp_token",
}


def _record(
    request: HttpRequest, action: str, target: str, message: str, *, ok: bool, host: Host | None = None
) -> None:
    user = request.user if request.user.is_authenticated else None
    audit(
        actor=user,
        ctx=RequestContext.from_request(request),
        action=action,
        result=AuditResult.SUCCEEDED if ok else AuditResult.REFUSED,
        host=host,
        target=target[:255],
        params={k: v for k, v in request.POST.items() if k not in _SECRET_FIELDS},
        message=message[:1000],
    )
