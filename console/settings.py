"""Settings for the container console, read from environment variables.

Every value has a safe default for the embedded single-machine setup: SQLite in
``var/``, Redis on loopback, DEBUG off, a secret key generated on first run and
kept in ``var/secret_key`` (never committed).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CONSOLE_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = VAR_DIR / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = _env_bool("DEBUG")
# One switch for a deployment behind HTTPS: secure cookies, HSTS, HTTP -> HTTPS redirect and
# short browser-bound sessions (see "Production" in the README). Off: the embedded console on
# http://127.0.0.1:8000 works over plain HTTP.
PRODUCTION = _env_bool("CONSOLE_PRODUCTION")
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "template_partials",
    "console",
    "containers",
    "storage",
    "networks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outermost after SecurityMiddleware, so the lockout page and static files get the header too.
    "console.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "console.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "console.security.RequireOTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # htmx requests get partials: a vanished object's panel a small notice (286), never a page.
    "console.htmx.HtmxPartialMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # A NUL anywhere in a request: 400 before the view (after the CSRF check and the user are known).
    "console.input_guard.RefuseNulMiddleware",
    # Last, as django-axes requires: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    }
]

# SQLite by default. WAL lets the web process read while the agent writes; the
# busy timeout and IMMEDIATE transactions make concurrent writers wait instead of
# failing with "database is locked".
_SQLITE_OPTIONS = {
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
}
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
else:
    # Connections kept for 60 s as with DATABASE_URL: with 0, Celery's Django fixup closes the
    # agent's connection at every task's start and end and each lxc-monitor event closes its
    # thread's, so every operation and event opened a new one (and ran the PRAGMAs below).
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "console.sqlite3"),
            "CONN_MAX_AGE": 60,
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(_SQLITE_OPTIONS)
    # A file, not memory: host tests run a real agent process against it.
    DATABASES["default"].setdefault("TEST", {})["NAME"] = str(
        Path(os.environ.get("CONSOLE_TEST_DB", VAR_DIR / "test-console.sqlite3"))
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out username+IP before any backend checks the password.
AUTHENTICATION_BACKENDS = [
    "console.security.AxesBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failed logins: AXES_FAILURE_LIMIT failures for one username from one IP lock that pair out for
# AXES_COOLOFF_MINUTES; a successful login clears the count. Attempts are kept in the database.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# A try while locked out (even with the right password) counts and restarts the cool-off;
# console.security.lockout_response relies on that to tell when to try again.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
AXES_LOCKOUT_CALLABLE = "console.security.lockout_response"
# Same client address as the audit trail (console.middleware.client_address).
AXES_CLIENT_IP_CALLABLE = "console.security.client_ip"
# Two-factor (TOTP): name shown in authenticator apps.
OTP_TOTP_ISSUER = os.environ.get("OTP_TOTP_ISSUER", "LXC console")
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "containers:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Django's database sessions, with the cookie's key checked before it reaches a query.
SESSION_ENGINE = "console.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = PRODUCTION or _env_bool("SECURE_COOKIES")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# Production: HTTPS only (redirect + HSTS), sessions end with the browser or after
# SESSION_COOKIE_AGE seconds (8 hours by default there; Django's two weeks otherwise).
SECURE_SSL_REDIRECT = PRODUCTION
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000")) if PRODUCTION else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION and _env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = PRODUCTION and _env_bool("SECURE_HSTS_PRELOAD", True)
SESSION_EXPIRE_AT_BROWSER_CLOSE = PRODUCTION
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(8 * 3600 if PRODUCTION else 1209600)))


# Reverse proxies whose X-Forwarded-For is believed: addresses or networks, comma-separated (the
# format of uvicorn's --forwarded-allow-ips, which `make run` passes the same value). Empty by
# default: the TCP peer is the client, whatever headers it sends.
def _networks(name: str) -> list[str]:
    from django.core.exceptions import ImproperlyConfigured

    networks = []
    for entry in filter(None, (p.strip() for p in os.environ.get(name, "").split(","))):
        try:
            networks.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {entry!r} is not an IP address or network")
    return networks


TRUSTED_PROXIES = _networks("TRUSTED_PROXIES")
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients).
if _env_bool("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Sent on every response by console.security.ContentSecurityPolicyMiddleware: only the
# console's own static files; no inline script or style, no eval, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)

# Celery: one queue per managed host ("host.<slug>"), nothing on a default queue.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
# kombu's Redis transport, made to survive a lost connection with messages unacknowledged
# (console.broker): an agent reconnects instead of exiting when Redis restarts.
CELERY_BROKER_TRANSPORT = "console.broker:Transport"
CELERY_TASK_IGNORE_RESULT = True
# A message is only a wake-up (the database is the queue of record): acknowledged when its task
# starts. Acknowledged at the end (acks_late), a message of a running operation made the worker
# exit when Redis restarted (kombu 5.7 acks on the dead channel); an agent that dies mid-operation
# loses nothing either way: its next life adopts the running row and claims the pending ones.
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "unrouted"
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request whose wake-up cannot reach Redis gives up after one quick retry (kombu's default
# retries for ~6 s, which every action would then take to answer): the operation stays pending
# and the agent claims it from the database (console.agent).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 6 * 3600,
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
    # One list per queue (no priority sub-lists): an agent's Redis user may read only host.<slug>.
    "priority_steps": [0],
}
_agent_host = os.environ.get("CONSOLE_AGENT_HOST", "")
if _agent_host:
    # An agent's own record of unacknowledged messages, instead of kombu's shared "unacked" hash
    # (console.broker_acl: which keys an agent may touch, and why).
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        unacked_key=f"unacked.host.{_agent_host}",
        unacked_index_key=f"unacked_index.host.{_agent_host}",
        unacked_mutex_key=f"unacked_mutex.host.{_agent_host}",
    )
# No remote control (its broadcast exchange celery.pidbox is shared by every worker).
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
CELERY_TASK_PUBLISH_RETRY = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Operations are signed (console.signing). The web side's master key: CONSOLE_SIGNING_KEY, else
# derived from SECRET_KEY. An agent on another machine holds only its own host's key (hex).
CONSOLE_SIGNING_KEY = os.environ.get("CONSOLE_SIGNING_KEY", "")
CONSOLE_AGENT_KEY = os.environ.get("CONSOLE_AGENT_KEY", "")
# Where agents on other machines reach Redis and PostgreSQL (host:port), written into the
# credentials enrolment hands out; empty: the addresses in the console's own REDIS_URL/DATABASE_URL.
AGENT_REDIS_ADDRESS = os.environ.get("AGENT_REDIS_ADDRESS", "")
AGENT_DATABASE_ADDRESS = os.environ.get("AGENT_DATABASE_ADDRESS", "")

# The agent of the embedded default: the local host.
CONSOLE_LOCAL_HOST_SLUG = os.environ.get("CONSOLE_HOST_SLUG", "local")
CONSOLE_DEFAULT_LXC_PATH = os.environ.get("CONSOLE_LXC_PATH", "/var/lib/lxc")
# The lxc-* tools' system-wide defaults (lxc-config): the file the host page's form writes.
LXC_SYSTEM_CONF = os.environ.get("LXC_SYSTEM_CONF", "/etc/lxc/lxc.conf")
AGENT_HEARTBEAT_SECONDS = int(os.environ.get("AGENT_HEARTBEAT_SECONDS", "5"))
# A host whose agent has not sent a heartbeat for this long is shown as offline.
AGENT_OFFLINE_AFTER_SECONDS = int(os.environ.get("AGENT_OFFLINE_AFTER_SECONDS", "20"))
# ...and known dead after this long: the operations it was running are then recorded as failed
# ("host vm1 offline since 14:02:11; outcome unknown") by the web side's host watch, which looks
# every HOST_WATCH_SECONDS (console.hostwatch; 0: no watch in this process). Long enough that an
# agent's restart or a short network cut never fails an operation its agent could still settle.
# A page's event stream sends a list page's refresh ("containers", "operations") at most this often
# (console.stream.ListThrottle; 0: every change, as before).
STREAM_LIST_REFRESH_SECONDS = float(os.environ.get("STREAM_LIST_REFRESH_SECONDS", "1"))
HOST_DEAD_AFTER_SECONDS = int(os.environ.get("HOST_DEAD_AFTER_SECONDS", "180"))
HOST_WATCH_SECONDS = float(os.environ.get("HOST_WATCH_SECONDS", "15"))
INVENTORY_SYNC_SECONDS = int(os.environ.get("INVENTORY_SYNC_SECONDS", "30"))
# The database is the queue of record: every this many seconds the agent claims its host's
# pending operations from it, so a broker message lost (Redis crashed) delays an operation by
# at most this long. The message itself is only a wake-up.
AGENT_CLAIM_SECONDS = float(os.environ.get("AGENT_CLAIM_SECONDS", "5"))
# Where the agent keeps what must outlive it: the exit status of supervised commands.
AGENT_STATE_DIR = os.environ.get("AGENT_STATE_DIR", "/var/lib/lxc-console/agent")
USAGE_REFRESH_SECONDS = int(os.environ.get("USAGE_REFRESH_SECONDS", "5"))
COMMAND_TIMEOUT_SECONDS = int(os.environ.get("COMMAND_TIMEOUT_SECONDS", "600"))
CONTAINER_STOP_TIMEOUT_SECONDS = int(os.environ.get("CONTAINER_STOP_TIMEOUT_SECONDS", "30"))
# Debian containers: debootstrap release, mirror (empty: the first Debian archive of the
# host's apt sources), extra packages (an init so the container boots), cache directory.
DEBIAN_RELEASE = os.environ.get("DEBIAN_RELEASE", "bookworm")
DEBIAN_MIRROR = os.environ.get("DEBIAN_MIRROR", "")
DEBIAN_INCLUDE = os.environ.get("DEBIAN_INCLUDE", "systemd-sysv,ifupdown,isc-dhcp-client")
DEBIAN_CACHE_DIR = os.environ.get("DEBIAN_CACHE_DIR", "/var/cache/lxc-console/debian")
# Debian root filesystems built for libvirt domains: <DOMAIN_ROOTFS_DIR>/<name>/rootfs.
DOMAIN_ROOTFS_DIR = os.environ.get("DOMAIN_ROOTFS_DIR", "/var/lib/lxc-console/domains")
# Root filesystem tarballs may be used only from these host directories.
ROOTFS_TARBALL_DIRS = [
    p for p in os.environ.get("ROOTFS_TARBALL_DIRS", "/var/lib/lxc-console/images").split(":") if p
]
# Files downloaded from a running container's filesystem are capped at this size.
FILE_DOWNLOAD_MAX_BYTES = int(os.environ.get("FILE_DOWNLOAD_MAX_BYTES", str(10 * 1024 * 1024)))
FILE_LIST_LIMIT = int(os.environ.get("FILE_LIST_LIMIT", "1000"))
# Boot autostart: run by an agent that starts within this many seconds of the host's boot,
# for these groups (lxc-autostart --group syntax: "onboot," = group onboot and no group).
AUTOSTART_BOOT_WINDOW_SECONDS = int(os.environ.get("AUTOSTART_BOOT_WINDOW_SECONDS", "600"))
AUTOSTART_BOOT_GROUPS = os.environ.get("AUTOSTART_BOOT_GROUPS", "onboot,")
# Audit log: rows per export, and how long rows are kept (pruning is itself audited).
AUDIT_EXPORT_MAX_ROWS = int(os.environ.get("AUDIT_EXPORT_MAX_ROWS", "100000"))
AUDIT_RETENTION_DAYS = int(os.environ.get("AUDIT_RETENTION_DAYS", "365"))
# Browser terminals end after this many seconds without input.
TERMINAL_IDLE_SECONDS = int(os.environ.get("TERMINAL_IDLE_SECONDS", "1800"))
# The first page of a list holds this many rows.
PAGE_SIZE = int(os.environ.get("PAGE_SIZE", "50"))
# One-time links that set a password (invitations, resets by a superuser) work this long.
PASSWORD_LINK_HOURS = int(os.environ.get("PASSWORD_LINK_HOURS", "72"))
# Where `manage.py users` says the console is, to print whole links (pages use the request's).
CONSOLE_BASE_URL = os.environ.get("CONSOLE_BASE_URL", "http://127.0.0.1:8000")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
