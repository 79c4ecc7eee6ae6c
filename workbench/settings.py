"""Settings read from the environment, with an embedded default that needs no services.

`WORKBENCH_MODE=demo` (default) runs on SQLite and kombu's filesystem broker under `var/`;
`WORKBENCH_MODE=production` refuses to start without `SECRET_KEY` or with `DEBUG=true`, and turns
on secure cookies, HSTS and SSL redirects. See `.env.example` for every variable.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

WORKBENCH_MODE = env.str("WORKBENCH_MODE", default="demo")
if WORKBENCH_MODE not in ("demo", "production"):
    raise ImproperlyConfigured(
        f"WORKBENCH_MODE must be 'demo' or 'production', not {WORKBENCH_MODE!r}"
    )
PRODUCTION = WORKBENCH_MODE == "production"

VAR_DIR = Path(env.str("WORKBENCH_VAR_DIR", default=str(BASE_DIR / "var")))
WORKBENCH_DATA_DIR = Path(env.str("WORKBENCH_DATA_DIR", default=str(VAR_DIR / "data")))


def _demo_secret_key() -> str:
    """A random key kept under var/ so demo sessions survive a restart; never used in production."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        # Created readable by its owner only (as the demo's credentials), never world-readable.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(50))
    elif path.stat().st_mode & 0o077:
        path.chmod(0o600)  # one written by an older version
    return path.read_text().strip()


if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set (at least 50 characters) when WORKBENCH_MODE=production"
        )
else:
    SECRET_KEY = env.str("SECRET_KEY", default="") or _demo_secret_key()

DEBUG = env.bool("DEBUG", default=False)
if PRODUCTION and DEBUG:
    # Debug pages show settings, SQL and tracebacks to anyone: never in production.
    raise ImproperlyConfigured("DEBUG must be false when WORKBENCH_MODE=production")
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "csp",
    "django_celery_beat",
    "django_celery_results",
    "axes",
    "workbench",
    "workbench.core",
    "labeling",
    "active_learning",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Before any view (and CSRF's, which parses the body): an oversized upload is refused unread.
    "workbench.core.limits.UploadLimitMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "workbench.urls"
WSGI_APPLICATION = "workbench.wsgi.application"

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

# SQLite (embedded default): WAL so readers never block the writer, IMMEDIATE transactions so
# web, worker and beat queue for the write lock instead of failing mid-transaction.
_SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 30,
}


def database_config(url: str) -> dict[str, Any]:
    """The DATABASES entry for `url` (the fault tests point their process at a server of
    their own through it)."""
    config: dict[str, Any] = dict(environ.Env.db_url_config(url))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config.setdefault("OPTIONS", {}).update(_SQLITE_OPTIONS)
    else:
        config["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
        config["CONN_HEALTH_CHECKS"] = True
        # The queue's plain statements (labeling/statements.py, run by workbench/core/sql.py)
        # bind on the server and are prepared on first use, with generic plans (PostgreSQL
        # re-planned the claim at every call, ~1 ms); Django's own cursors interpolate on the
        # client and never prepare, so neither touches them.
        config.setdefault("OPTIONS", {}).update(
            {"prepare_threshold": 0, "options": "-c plan_cache_mode=force_generic_plan"}
        )
    return config


DATABASES = {
    "default": database_config(
        env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
    ),
}
# Tests create their own database; TEST_DATABASE_NAME keeps parallel runs on one server apart.
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default="") or None}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Serve straight from the finders when collectstatic has not run (tests, first demo start).
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG

# Content-Security-Policy: no inline scripts or styles, nothing from other origins.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Sessions and their users read in plain statements (every request does): workbench/core/auth.py.
SESSION_ENGINE = "workbench.core.auth"
AUTHENTICATION_BACKENDS = [
    # First: refuses every login of a locked-out username or address (django-axes).
    "axes.backends.AxesStandaloneBackend",
    "workbench.core.auth.ModelBackend",
    # Sessions opened before name Django's backend: kept, so nobody is logged out by an upgrade
    # (permission checks read the caches the first one filled, so nothing runs twice).
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT failed logins of one username, or
# from one address, both login pages refuse that username or address for LOGIN_COOLOFF_MINUTES
# (an admin unlocks earlier by deleting the "access attempt" in the admin). Behind a reverse
# proxy set CLIENT_IP_PROXY_COUNT, or every client shares the proxy's address (and its lockout).
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked.html"
AXES_CLIENT_IP_CALLABLE = "workbench.core.client_ip.client_ip"
# Proxies in front of the site that append to X-Forwarded-For (0: use the socket's address).
CLIENT_IP_PROXY_COUNT = env.int("CLIENT_IP_PROXY_COUNT", default=0)
CLIENT_IP_HEADER = env.str("CLIENT_IP_HEADER", default="HTTP_X_FORWARDED_FOR")

# The upload page refuses larger requests before reading them; the command imports any size.
IMPORT_UPLOAD_MAX_MB = env.float("IMPORT_UPLOAD_MAX_MB", default=100.0)
# Export files (WORKBENCH_DATA_DIR/exports) are deleted by the minute tick this long after the
# export finished; the job then says the file expired.
EXPORT_EXPIRE_HOURS = env.float("EXPORT_EXPIRE_HOURS", default=24.0)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # the static htmx-config script reads it for the X-CSRFToken header
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Celery: the embedded default is kombu's filesystem transport (one folder for in and out).
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
# Redis: a prefix on every broker key (queues, acks, control channels), so deployments or test
# runs sharing one Redis server never read each other's messages.
BROKER_KEY_PREFIX = env.str("BROKER_KEY_PREFIX", default="")


def broker_transport_options(url: str, *, folder: Path, key_prefix: str) -> dict[str, object]:
    """kombu's options for `url`: the filesystem transport's folders under `folder`, Redis's
    key prefix; none for other transports."""
    if url.startswith("filesystem"):
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
    if url.startswith(("redis", "rediss")):
        # A worker reads its queues in the order given (short jobs first), not in turn.
        options: dict[str, object] = {"queue_order_strategy": "priority"}
        if key_prefix:
            options["global_keyprefix"] = key_prefix
        return options
    return {}


CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(
    CELERY_BROKER_URL, folder=BROKER_DIR, key_prefix=BROKER_KEY_PREFIX
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Short jobs have a queue of their own: the minute tick, the status page's ping, the nightly
# fan-out and imports of small files (IMPORT_SHORT_MAX_BYTES). A worker started with
# `-Q short` serves them at once while retrains and embedding chunks (the default queue, "celery")
# hold the other workers; a worker with no -Q reads both, short first on Redis.
SHORT_QUEUE = "short"
DEFAULT_QUEUE = "celery"
CELERY_TASK_DEFAULT_QUEUE = DEFAULT_QUEUE
CELERY_TASK_QUEUES = (
    Queue(SHORT_QUEUE, routing_key=SHORT_QUEUE),
    Queue(DEFAULT_QUEUE, routing_key=DEFAULT_QUEUE),
)
CELERY_TASK_ROUTES = {
    name: {"queue": SHORT_QUEUE}
    for name in (
        "workbench.minute_tick",
        "active_learning.pipeline_tick",
        "workbench.ping",
        "active_learning.retrain_all",
        # ~1.5 s at a million cases; behind a retrain it would leave pages "not counted yet".
        "active_learning.dashboard_snapshot_refresh",
    )
}
IMPORT_SHORT_MAX_BYTES = env.int("IMPORT_SHORT_MAX_BYTES", default=20 * 1024 * 1024)
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_CACHE_BACKEND = "django-cache"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=3600)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=3900)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The database scheduler, plus the periodic tasks ensured at start and a heartbeat (workbench/beat.py).
CELERY_BEAT_SCHEDULER = "workbench.beat:Scheduler"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# Jobs: a heartbeat thread writes every HEARTBEAT seconds; a job silent for STALE seconds is failed.
JOB_HEARTBEAT_SECONDS = env.float("JOB_HEARTBEAT_SECONDS", default=10.0)
JOB_STALE_SECONDS = env.float("JOB_STALE_SECONDS", default=60.0)
# A worker asked to stop (SIGTERM) hands its running jobs back; one still busy after this many
# seconds is abandoned (jobs handed back, process exited), so a stop never waits for a retrain.
WORKER_STOP_SECONDS = env.float("WORKER_STOP_SECONDS", default=20.0)

# Queue: a claimed item is the analyst's for this long; the page renews it on activity.
QUEUE_LEASE_SECONDS = env.int("QUEUE_LEASE_SECONDS", default=600)

EMBEDDING_MODEL = env.str("EMBEDDING_MODEL", default="all-MiniLM-L6-v2")
EMBEDDING_MODEL_PATH = env.str("EMBEDDING_MODEL_PATH", default="")  # empty: the bundled model
WORKER_THREADS = env.int("WORKER_THREADS", default=1)
# Embedding runs as its own job, with its own time limit (seconds); a retrain embeds at most
# EMBED_INLINE_MAX new texts itself and leaves more to that job, training on what is embedded.
EMBED_TIME_LIMIT = env.int("EMBED_TIME_LIMIT", default=6 * 3600)
EMBED_INLINE_MAX = env.int("EMBED_INLINE_MAX", default=5000)
# Texts per chunk (one Celery task, one progress step, the work lost when a worker dies).
EMBED_CHUNK_TEXTS = env.int("EMBED_CHUNK_TEXTS", default=512)
# A full retrain of every project on this cron schedule (empty: none); see the admin's Periodic tasks.
RETRAIN_CRON = env.str("RETRAIN_CRON", default="0 2 * * *")
# Heavy pipeline steps send their chunks as a Celery group so other workers can help.
PIPELINE_FANOUT = env.bool("PIPELINE_FANOUT", default=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"no_403_traceback": {"()": "workbench.core.limits.No403Traceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    # A refused request is logged in one line: a permission check is not a crash.
    "loggers": {"django.request": {"filters": ["no_403_traceback"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
