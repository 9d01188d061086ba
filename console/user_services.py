"""Users: create or invite, deactivate, reactivate, reset a password, remove two-factor.

Superusers do these on the Users pages; ``manage.py users`` does them for scripts, with
``actor=None`` (whoever runs manage.py on the console's machine already holds its database).
Every change writes its AuditEvent in the same transaction; refusals are audited too.

A password is set by its owner through a one-time link (an invitation or a reset): only the
token's SHA-256 is stored, the link works once, until it expires, and only while it is the
user's newest one. A deactivated user's sessions are deleted at once (and Django's
``ModelBackend`` refuses an inactive user's session on the next request in any case), and their
open browser terminals are told to close.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model, password_validation
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from console.choices import ACTIVE_STATUSES, AuditResult
from console.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError
from console.models import Operation, PasswordLink, Team
from console.operations import RequestContext, audit, audited_refusal

# ASCII only, so two user names cannot look alike; unique regardless of case.
_USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,149}")
USERNAME_RULE = (
    "a user name is 1-150 ASCII letters, digits, '.', '_', '-', '@' or '+', starting with a letter or digit"
)
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_PASSWORD_MAX = 1024


@dataclass(frozen=True)
class IssuedLink:
    """A new one-time link; ``token`` exists only here (the database has its hash)."""

    link: PasswordLink
    token: str

    @property
    def path(self) -> str:
        return reverse("user-set-password", kwargs={"token": self.token})


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _target(username: str) -> str:
    return f"user {username}"[:255]


@contextmanager
def _change(
    actor: Any, ctx: RequestContext, action: str, target: str, params: dict, *, authorize: bool = True
) -> Iterator[Callable[..., None]]:
    """Audit a refusal of the change (then re-raise); yield ``done(**extra)``, its success row.

    ``done`` is called inside the change's transaction, so the row and the change commit together.
    """

    def done(**extra: Any) -> None:
        audit(
            **{"actor": actor, "ctx": ctx, "action": action, "target": target, "params": params, **extra},
            result=AuditResult.SUCCEEDED,
        )

    with audited_refusal(actor=actor, ctx=ctx, action=action, target=target, params=params):
        if authorize:
            _authorize(actor)
        yield done


def _params(actor: Any, **params: Any) -> dict:
    """The audit parameters; changes made by manage.py say so (their actor is "system")."""
    return {**params, "via": "manage.py"} if actor is None else params


def _authorize(actor: Any) -> None:
    if actor is None:
        return  # manage.py on the console's own machine
    if not (getattr(actor, "is_active", False) and getattr(actor, "is_superuser", False)):
        raise Forbidden("only superusers manage users")


def _refuse_self(actor: Any, user: Any, what: str) -> None:
    if actor is not None and actor.pk == user.pk:
        raise Conflict(what)


def clean_username(username: str) -> str:
    # Not stripped: "bob\n" or " bob" is refused, never quietly turned into another name.
    username = username or ""
    if not _USERNAME_RE.fullmatch(username):
        raise InvalidInput(USERNAME_RULE, field="username")
    return username


def clean_email(email: str) -> str:
    email = email or ""
    if not email:
        return ""
    if len(email) > 254 or not email.isascii() or any(ord(ch) < 32 or ord(ch) == 127 for ch in email):
        raise InvalidInput(
            "an e-mail address is up to 254 ASCII characters, like name@example.org", field="email"
        )
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput(f"{email!r} is not an e-mail address", field="email")
    return email


def _check_password(password: str, user: Any, *, field: str = "password") -> None:
    if not password:
        raise InvalidInput("type a password", field=field)
    if len(password) > _PASSWORD_MAX or "\x00" in password:
        raise InvalidInput(f"a password is at most {_PASSWORD_MAX} characters, without NUL", field=field)
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field=field)


def find_user(username: str) -> Any:
    """The user named ``username`` (exact name), for manage.py."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def _state(user: Any) -> dict:
    return {"active": user.is_active, "superuser": user.is_superuser, "email": user.email}


def end_sessions(user: Any) -> int:
    """Delete every unexpired session of ``user``; the number deleted.

    Django's session table has no user column, so each live session is decoded: the cost grows
    with the number of open sessions (a team console has a few hundred at most), and it is paid
    only by a deactivation or a password reset.
    """
    store = import_module(settings.SESSION_ENGINE).SessionStore
    keys = [
        s.session_key
        for s in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if s.get_decoded().get(SESSION_KEY) == str(user.pk)
    ]
    for key in keys:
        store().delete(key)  # through the engine, so cached_db's cache entry goes too
    return len(keys)


def end_terminals(user: Any) -> list[int]:
    """Tell every open browser terminal of ``user`` to close, once the change has committed.

    A terminal outlives the page's session (its websocket was authorized when it opened), so a
    deactivation or a reset ends it explicitly: the agent's relay reads the same "close" message
    the page sends when its tab closes, ends the program and the session's operation. Returns the
    ids of those operations.
    """
    from containers import terminal
    from containers.choices import ContainerOp

    sessions = list(
        Operation.objects.filter(
            kind=ContainerOp.TERMINAL, actor=user, status__in=ACTIVE_STATUSES
        ).values_list("host__slug", "pk")
    )

    def send() -> None:
        import redis

        r = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
        try:
            for slug, pk in sessions:
                r.rpush(terminal.in_key(slug, pk), json.dumps({"type": "close"}))
                r.expire(terminal.in_key(slug, pk), 300)
        finally:
            r.close()

    if sessions:
        # robust: Redis being down must not undo or hide the deactivation, which has committed.
        transaction.on_commit(send, robust=True)
    return [pk for _, pk in sessions]


def _revoke_links(user: Any) -> int:
    return PasswordLink.objects.filter(user=user, used_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def _issue_link(user: Any, purpose: str, actor: Any) -> IssuedLink:
    """A new link for ``user``; any older unused one stops working."""
    _revoke_links(user)
    token = secrets.token_urlsafe(32)
    link = PasswordLink.objects.create(
        user=user,
        purpose=purpose,
        token_hash=_hash(token),
        created_by_name=actor.get_username() if actor is not None else "manage.py",
        expires_at=timezone.now() + timedelta(hours=settings.PASSWORD_LINK_HOURS),
    )
    return IssuedLink(link=link, token=token)


def create_user(
    *,
    actor: Any,
    ctx: RequestContext,
    username: str,
    email: str = "",
    password: str | None = None,
    teams: list[str] | None = None,
) -> tuple[Any, IssuedLink | None]:
    """A new ordinary user with ``password``, or (password None) invited by a one-time link."""
    action = "user.create" if password is not None else "user.invite"
    params = _params(actor, username=username, email=email, teams=list(teams or []))
    with _change(actor, ctx, action, _target(username), params) as done:
        username = clean_username(username)
        email = clean_email(email)
        User = get_user_model()  # noqa: N806
        if User.objects.filter(username__iexact=username).exists():
            raise Conflict(f"a user named {username!r} exists already", field="username")
        chosen = list(Team.objects.filter(name__in=teams or []))
        unknown = sorted(set(teams or []) - {t.name for t in chosen})
        if unknown:
            raise InvalidInput(f"unknown team(s): {', '.join(unknown)}", field="teams")
        user = User(username=username, email=email)
        if password is not None:
            _check_password(password, user)
        with transaction.atomic():
            if password is not None:
                user.set_password(password)
            else:
                user.set_unusable_password()
            user.save()
            for team in chosen:
                team.members.add(user)
            issued = _issue_link(user, PasswordLink.Purpose.INVITE, actor) if password is None else None
            after = {**_state(user), "teams": sorted(t.name for t in chosen)}
            if issued is not None:
                after["link_expires"] = issued.link.expires_at.isoformat()
            done(after=after)
        return user, issued


def deactivate_user(*, actor: Any, ctx: RequestContext, user: Any) -> int:
    """Deactivate ``user``: their sessions and unused links end now. Returns the sessions ended."""
    params = _params(actor, username=user.username)
    with _change(actor, ctx, "user.deactivate", _target(user.username), params) as done:
        _refuse_self(actor, user, "you cannot deactivate yourself")
        with transaction.atomic():
            User = get_user_model()  # noqa: N806
            # Lock every active superuser, so two superusers deactivating each other at the same
            # time cannot leave none.
            supers = list(User.objects.select_for_update().filter(is_superuser=True, is_active=True))
            user.refresh_from_db()
            if not user.is_active:
                raise Conflict(f"{user.username} is already deactivated")
            if user.is_superuser and not [u for u in supers if u.pk != user.pk]:
                raise Conflict(f"{user.username} is the last active superuser: the console would have none")
            before = _state(user)
            user.is_active = False
            user.save(update_fields=["is_active"])
            links = _revoke_links(user)
            sessions = end_sessions(user)
            terminals = end_terminals(user)
            done(
                before=before,
                after={
                    **_state(user),
                    "sessions_ended": sessions,
                    "links_revoked": links,
                    "terminals_ended": terminals,
                },
            )
        return sessions


def reactivate_user(*, actor: Any, ctx: RequestContext, user: Any) -> None:
    params = _params(actor, username=user.username)
    with _change(actor, ctx, "user.reactivate", _target(user.username), params) as done, transaction.atomic():
        user.refresh_from_db()
        if user.is_active:
            raise Conflict(f"{user.username} is already active")
        before = _state(user)
        user.is_active = True
        user.save(update_fields=["is_active"])
        done(before=before, after=_state(user))


def reset_password(*, actor: Any, ctx: RequestContext, user: Any) -> IssuedLink:
    """The current password stops working and the user's sessions end; a one-time link sets a new one."""
    params = _params(actor, username=user.username)
    with _change(actor, ctx, "user.password.reset", _target(user.username), params) as done:
        _refuse_self(actor, user, "change your own password on your Account page")
        if not user.is_active:
            raise Conflict(f"{user.username} is deactivated: reactivate them first")
        with transaction.atomic():
            user.set_unusable_password()
            user.save(update_fields=["password"])
            sessions = end_sessions(user)
            terminals = end_terminals(user)
            issued = _issue_link(user, PasswordLink.Purpose.RESET, actor)
            done(
                after={
                    "sessions_ended": sessions,
                    "terminals_ended": terminals,
                    "link_expires": issued.link.expires_at.isoformat(),
                }
            )
        return issued


def remove_two_factor(*, actor: Any, ctx: RequestContext, user: Any) -> int:
    """Delete the user's TOTP devices (a lost phone); their next log-in asks for no code."""
    params = _params(actor, username=user.username)
    with _change(actor, ctx, "user.totp.remove", _target(user.username), params) as done:
        _refuse_self(actor, user, "turn your own two-factor authentication off on your Account page")
        with transaction.atomic():
            devices = list(TOTPDevice.objects.select_for_update().filter(user=user))
            if not devices:
                raise Conflict(f"{user.username} has no two-factor device")
            TOTPDevice.objects.filter(pk__in=[d.pk for d in devices]).delete()
            done(before={"devices": [{"name": d.name, "confirmed": d.confirmed} for d in devices]})
        return len(devices)


def find_link(token: str) -> PasswordLink | None:
    """The link whose token this is (used, expired or not), or None."""
    if not _TOKEN_RE.fullmatch(token or ""):
        return None
    return PasswordLink.objects.select_related("user").filter(token_hash=_hash(token)).first()


class LinkGone(ServiceError):
    """The link exists but was used, replaced or has expired."""

    status_code = 410


def check_link(link: PasswordLink | None) -> PasswordLink:
    """``link`` if it can still set a password; otherwise the reason, for the page and the audit row."""
    if link is None:
        raise NotFound(
            "This link is not valid. Check that it was copied whole, or ask a superuser for a new one."
        )
    if link.used_at is not None:
        raise LinkGone(
            "This link was already used. Log in with the password set then, or ask for a new link."
        )
    if link.revoked_at is not None:
        raise LinkGone("This link was replaced or withdrawn. Ask a superuser for a new one.")
    if link.expires_at <= timezone.now():
        raise LinkGone("This link has expired. Ask a superuser for a new one.")
    if not link.user.is_active:
        raise LinkGone("This account is deactivated.")
    return link


def set_password_with_link(*, ctx: RequestContext, token: str, password: str, password_again: str) -> Any:
    """The link's owner sets their password; the link is then spent and their other sessions end."""
    link = find_link(token)
    actor = link.user if link is not None else AnonymousUser()
    target = _target(link.user.username) if link is not None else "password link"
    # Never the token itself: the audit trail must not hold a usable link.
    params = {"link": link.pk if link is not None else None}
    with _change(actor, ctx, "user.password.set", target, params, authorize=False) as done:
        link = check_link(link)
        user = link.user
        if password != password_again:
            raise InvalidInput("the two passwords differ", field="new_password2")
        _check_password(password, user, field="new_password1")
        with transaction.atomic():
            # Spent by exactly one request, even if two arrive together.
            spent = PasswordLink.objects.filter(
                pk=link.pk, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
            ).update(used_at=timezone.now())
            if spent != 1:
                raise LinkGone("This link was already used. Ask a superuser for a new one.")
            user.set_password(password)
            user.save(update_fields=["password"])
            _revoke_links(user)
            sessions = end_sessions(user)
            # Failed logins before the new password must not keep its owner locked out with it.
            from axes.utils import reset as reset_lockouts

            lockouts = reset_lockouts(username=user.get_username())
            done(
                params={**params, "purpose": link.purpose},
                after={"sessions_ended": sessions, "login_failures_cleared": lockouts},
            )
        return user
