"""Settings of the Aanspraakmanager, read from the environment (docs/operations.md,
"Environment", lists every variable with its default).

With nothing set the hub runs embedded: SQLite in ``var/`` and a Celery broker on the
filesystem, so a laptop needs no outside service. ``DATABASE_URL`` and
``CELERY_BROKER_URL`` switch to PostgreSQL and Redis. ``HUB_ENV=production`` refuses to
start without ``DJANGO_SECRET_KEY``, ``DJANGO_ALLOWED_HOSTS`` and
``HUB_FIELD_ENCRYPTION_KEYS``.

Variables are parsed by django-environ: booleans take 1/true/yes/on (0/false/no/off),
lists are comma-separated. The sections follow what they configure.
"""

import os
from pathlib import Path

import dj_database_url
import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()


def _items(name: str) -> list[str]:
    """A comma-separated variable's items without the spaces around them and without empty
    ones (``env.list`` keeps both), as the hub has always read its lists."""
    return [item for item in env.list(name, cast=str.strip, default=[]) if item]


# --- Deployment: production or development ------------------------------------------------
HUB_ENV = env.str("HUB_ENV", default="development")
PRODUCTION = HUB_ENV == "production"
DEBUG = env.bool("DJANGO_DEBUG", default=False)

# Read as written: django-environ would take a value starting with "$" (a generated key may)
# for a reference to another variable.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
ALLOWED_HOSTS = _items("DJANGO_ALLOWED_HOSTS")
# Keys for secrets the hub must be able to read back (the credentials it uses towards other
# parties). Fernet keys, newest first; the first encrypts, all decrypt (docs/operations.md,
# "Rotating secrets"). In development a key derived from SECRET_KEY stands in.
HUB_FIELD_ENCRYPTION_KEYS = _items("HUB_FIELD_ENCRYPTION_KEYS")
if PRODUCTION:
    if not SECRET_KEY:
        raise ImproperlyConfigured("HUB_ENV=production requires DJANGO_SECRET_KEY to be set.")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("HUB_ENV=production requires DJANGO_ALLOWED_HOSTS to be set.")
    if DEBUG:
        raise ImproperlyConfigured("HUB_ENV=production refuses DJANGO_DEBUG=1.")
    if not HUB_FIELD_ENCRYPTION_KEYS:
        raise ImproperlyConfigured(
            "HUB_ENV=production requires HUB_FIELD_ENCRYPTION_KEYS to be set."
        )
else:
    # Development only: a fixed key so sessions survive restarts; never used in production.
    SECRET_KEY = SECRET_KEY or "dev-only-insecure-key-do-not-use-in-production"
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["localhost", "127.0.0.1", "[::1]", "testserver"]

# HTTPS (docs/operations.md, "HTTPS and the proxy"; ``manage.py check --deploy`` is clean in
# production, tests/aanspraak/test_deploy_checks.py). The defaults follow HUB_ENV; each can be
# set on its own. HUB_BEHIND_TLS_PROXY=1: a proxy in front terminates TLS and sets
# X-Forwarded-Proto (overwriting what the client sent), so the hub trusts that header for
# "is this request https". Off, the header is ignored: a client could set it itself.
HUB_BEHIND_TLS_PROXY = env.bool("HUB_BEHIND_TLS_PROXY", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HUB_BEHIND_TLS_PROXY else None
# Plain-HTTP requests are redirected to https (behind a proxy that needs HUB_BEHIND_TLS_PROXY,
# else every request looks plain and loops); off when the proxy redirects itself.
SECURE_SSL_REDIRECT = env.bool("HUB_SSL_REDIRECT", default=PRODUCTION)
# Strict-Transport-Security: a year, for the hub's host and its subdomains, preload-ready.
SECURE_HSTS_SECONDS = env.int("HUB_HSTS_SECONDS", default=31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("HUB_HSTS_INCLUDE_SUBDOMAINS", default=PRODUCTION)
SECURE_HSTS_PRELOAD = env.bool("HUB_HSTS_PRELOAD", default=PRODUCTION)
# A probe of /healthz or /readyz over plain HTTP (a load balancer's, Kubernetes') is answered,
# not redirected: the answers hold nothing secret (docs/operations.md, "Health").
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
# The admin's session and CSRF cookies travel over https only.
SESSION_COOKIE_SECURE = env.bool("HUB_SECURE_COOKIES", default=PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Where the embedded default keeps its SQLite file and broker folders.
HUB_DATA_DIR = env("HUB_DATA_DIR", cast=Path, default=BASE_DIR / "var")

# --- Django: apps, middleware, URLs, templates -------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "oauth2_provider",
    "aanspraak",
    "entitlements",
    "confirmations",
    # Swagger UI's assets from the installed package: works offline, no CDN.
    "drf_spectacular_sidecar",
]

MIDDLEWARE = [
    # First: every answer carries X-Request-ID, one log line per request (docs/operations.md,
    # "Logs"), timed around everything else.
    "aanspraak.request_ids.RequestIdMiddleware",
    # Second: counts and times every answer, the other middlewares' included
    # (docs/operations.md, "Metrics").
    "aanspraak.metrics.middleware.HttpMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "aanspraak.middleware.ApiVersionMiddleware",
    # StatusResponse JSON for error answers outside DRF views (docs/api.md, "Errors").
    "aanspraak.api.middleware.StatusResponseErrorMiddleware",
    # 413 / 400-12 / 415 before any view (aanspraak/api/request_checks.py).
    "aanspraak.api.request_checks.RequestChecksMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, without a reference cycle per request (aanspraak/middleware.py).
    "aanspraak.middleware.AuthenticationMiddleware",
    "aanspraak.middleware.AdminMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en"
TIME_ZONE = "Europe/Amsterdam"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env("DJANGO_STATIC_ROOT", cast=Path, default=HUB_DATA_DIR / "static")

# The largest request body, in bytes: 413 above it (aanspraak/api/request_checks.py). The
# delivery orders have their own limit (one of 100,000 students with ECK iDs is some 15-30 MB
# of JSON); HUB_MAX_REQUEST_BYTES is its older name.
HUB_MAX_BODY_BYTES = env.int("HUB_MAX_BODY_BYTES", default=1024 * 1024)
HUB_MAX_ORDER_BYTES = env.int(
    "HUB_MAX_ORDER_BYTES", default=env.int("HUB_MAX_REQUEST_BYTES", default=32 << 20)
)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(HUB_MAX_BODY_BYTES, HUB_MAX_ORDER_BYTES)

# --- Database -------------------------------------------------------------------------------
# Lower case: not a setting (Django's debug page would show the password in it).
_database_url = env.str("DATABASE_URL", default="")
if _database_url:
    DATABASES = {
        "default": dj_database_url.parse(
            _database_url,
            conn_max_age=env.int("DATABASE_CONN_MAX_AGE", default=60),
            conn_health_checks=True,
        )
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend with the health check at most once per window (aanspraak/db).
        DATABASES["default"]["ENGINE"] = "aanspraak.db.postgresql"
        # JIT compiles for 100+ ms per query above jit_above_cost, more than the hub's short
        # OLTP queries take (docs/operations.md, "Indexes and JIT"); DATABASE_JIT=on restores it.
        jit = "on" if env.bool("DATABASE_JIT", default=False) else "off"
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["options"] = f"{options.get('options', '')} -c jit={jit}".strip()
        # The confirmation INSERT binds on the server and is prepared from its 5th use on a
        # connection (docs/performance.md, P2); off for a pooler that cannot keep prepared
        # statements (PgBouncer before 1.21, or without max_prepared_statements).
        prepared = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
        options["prepare_threshold"] = 5 if prepared else None
else:
    HUB_DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": HUB_DATA_DIR / "aanspraak.sqlite3",
            # Web and worker share one file: WAL and immediate transactions avoid lock errors.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A persistent connection that passed a health check (or was opened) this recently is not
# checked again before the next request's first query (aanspraak/db/postgresql/base.py).
DATABASE_HEALTH_CHECK_SECONDS = env.float("DATABASE_HEALTH_CHECK_SECONDS", default=1.0)

# --- Authentication: OAuth2 clients, tokens, passwords -------------------------------------
OAUTH2_PROVIDER_APPLICATION_MODEL = "aanspraak.Client"
OAUTH2_PROVIDER = {
    "ACCESS_TOKEN_EXPIRE_SECONDS": env.int("HUB_TOKEN_LIFETIME", default=3600),
    "SCOPES_BACKEND_CLASS": "aanspraak.scopes.ChainScopes",
    # private_key_jwt next to the client secret (aanspraak/services/client_assertions.py).
    "OAUTH2_VALIDATOR_CLASS": "aanspraak.api.oauth_validator.HubOAuth2Validator",
    # RFC 9700 (the OAuth 2.0 Security BCP), DOT's deploy checks oauth2_provider.W001-W010: the
    # compliant behaviour everywhere, none silenced (docs/security.md, "Production"). Tokens
    # are stored as their SHA-256 only (the token column stays empty; the hub's bearer lookup
    # uses the checksum, aanspraak/api/authentication.py), and a token in the query string is
    # refused. The hub serves only client_credentials (config/urls.py routes no authorization
    # endpoint, clients are registered for that grant alone), so the gates of the other grants
    # (implicit, password, PKCE, redirect URIs, the authorization response's iss, refresh
    # tokens) change nothing it does; they are set so that a grant enabled by mistake is
    # refused, and so that the checks stay clean without silencing any.
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "PKCE_REQUIRED": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
}
# private_key_jwt: the audience a client assertion must name (default: the token endpoint's
# URL as the client called it); a jwksUri's fetch timeout and how long its keys are kept.
HUB_TOKEN_AUDIENCE = env.str("HUB_TOKEN_AUDIENCE", default="") or None
HUB_JWKS_TIMEOUT = env.float("HUB_JWKS_TIMEOUT", default=5.0)
HUB_JWKS_CACHE_SECONDS = env.int("HUB_JWKS_CACHE_SECONDS", default=3600)

# Failed client authentications one client id may have from one address in a calendar minute
# before the token endpoint answers 429 until the minute is over; 0 turns it off.
HUB_TOKEN_FAILURES_PER_MINUTE = env.int("HUB_TOKEN_FAILURES_PER_MINUTE", default=10)

# Seconds a process may keep using what it read of an access token (client, party, scopes,
# expiry): a token revoked or a client changed elsewhere keeps working at most this long;
# an expired token is refused at once. 0 turns the cache off. docs/api.md#authentication.
HUB_TOKEN_CACHE_SECONDS = env.float("HUB_TOKEN_CACHE_SECONDS", default=30.0)

# Tests and their subprocesses use a fast hasher (client secrets are hashed with it); never in
# production, where Django's default (PBKDF2) applies.
if not PRODUCTION and _items("DJANGO_PASSWORD_HASHERS"):
    PASSWORD_HASHERS = _items("DJANGO_PASSWORD_HASHERS")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

# --- The chain's API: REST framework and the OpenAPI document ------------------------------
# The full version of the hub's API, sent as the API-Version header on every response.
HUB_API_VERSION = "1.0.0"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "aanspraak.api.authentication.CachedBearerAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["aanspraak.api.caller.HasChainScope"],
    "EXCEPTION_HANDLER": "aanspraak.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["aanspraak.api.negotiation.FastJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "aanspraak.api.negotiation.JsonFirstNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["aanspraak.api.throttle.ClientRateThrottle"],
}
# The rate limit of a client whose registry entry has no rateLimit ("600/min", "20/s",
# "10000/hour"); unset: no limit. docs/api.md, "Rate limits".
HUB_RATE_LIMIT = env.str("HUB_RATE_LIMIT", default="") or None

SPECTACULAR_SETTINGS = {
    "TITLE": "Aanspraakmanager API",
    "DESCRIPTION": "The entitlement hub of the Edu-V chain for digital learning materials.",
    "VERSION": HUB_API_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_GENERATE_CHOICE_DESCRIPTION": False,
    # Required strings are documented as the hub checks them: not blank (minLength 1 and
    # aanspraak.api.schema.NON_BLANK_PATTERN); every authenticated operation may answer 429
    # (docs/api.md, "Rate limits").
    "ENFORCE_NON_BLANK_FIELDS": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "aanspraak.api.schema.non_blank_strings",
        "aanspraak.api.schema.at_least_one_of_fields",
        "aanspraak.api.schema.rate_limit_responses",
    ],
    # The seeds' enum names. The serializers' choices are plain value lists, so the overrides
    # name the value lists (a TextChoices class hashes its labels too and would not match).
    # The request enums of seed 003 (no "expired" entitlement status, no "uninitialized" URL
    # status) get their own names next to the stored unions.
    "ENUM_NAME_OVERRIDES": {
        "EntitlementTypeEnum": "entitlements.statuses.EntitlementType.values",
        "EntitlementStatusEnum": "entitlements.statuses.EntitlementStatus.values",
        "UrlStatusEnum": "entitlements.statuses.UrlStatus.values",
        "OrganisationIdTypeEnum": "aanspraak.choices.OrganisationIdType.values",
        "UserIdTypeEnum": "aanspraak.choices.UserIdType.values",
        "ConfirmedEntitlementStatusEnum": (
            "confirmations.api.serializers.CONFIRMABLE_ENTITLEMENT_STATUSES"
        ),
        "ConfirmedUrlStatusEnum": "confirmations.api.serializers.CONFIRMABLE_URL_STATUSES",
    },
}

# --- Logging ---------------------------------------------------------------------------------
# One JSON object per line on stderr (docs/operations.md, "Logs"); HUB_LOG_FORMAT=text for
# plain lines (the demo's). Celery workers use this same configuration (config/celery.py).
HUB_LOG_FORMAT = env.str("HUB_LOG_FORMAT", default="json")
if HUB_LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured("HUB_LOG_FORMAT must be json or text.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "aanspraak.log_format.JsonFormatter"},
        "text": {"()": "aanspraak.log_format.TextFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": HUB_LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("HUB_LOG_LEVEL", default="INFO")},
    # httpx logs every request at INFO: one line per outbound message. Every attempt is
    # recorded in the database (DeliveryAttempt) already; failures are logged by dispatch.
    "loggers": {"httpx": {"level": env.str("HUB_HTTPX_LOG_LEVEL", default="WARNING")}},
}

# --- Operations: health and metrics (docs/operations.md, "Health" and "Metrics") -----------
# prometheus_client's multiprocess mode: every process (gunicorn and Celery workers) writes its
# metrics to files in this directory and GET /metrics sums them. prometheus_client reads the
# variable when it is first imported, so the default goes into the environment here, before
# any metric exists (config/gunicorn.conf.py sets the same default for its master). Empty it
# before the hub's processes start (``manage.py clear_metrics_dir``).
PROMETHEUS_MULTIPROC_DIR = env(
    "PROMETHEUS_MULTIPROC_DIR", cast=Path, default=HUB_DATA_DIR / "prometheus"
)
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PROMETHEUS_MULTIPROC_DIR)
# GET /metrics wants "Authorization: Bearer <this>" when set; open when unset. Read as written.
HUB_METRICS_TOKEN = os.environ.get("HUB_METRICS_TOKEN", "")
# Seconds each readiness check (database, broker, migrations) and a scrape's database gauges
# may take.
HUB_HEALTH_TIMEOUT = env.float("HUB_HEALTH_TIMEOUT", default=2.0)

# --- Celery and the shared cache: broker, acknowledgement, queues -------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = HUB_DATA_DIR / "broker"
    (_broker_dir / "queue").mkdir(parents=True, exist_ok=True)
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    (_broker_dir / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Django's cache holds what all web processes must share (the token endpoint's failure counts,
# the rate limits): the broker's Redis, or files under HUB_DATA_DIR on the embedded default.
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env.str("HUB_CACHE_URL", default=CELERY_BROKER_URL),
            "KEY_PREFIX": "aanspraak",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(HUB_DATA_DIR / "cache"),
            "KEY_PREFIX": "aanspraak",
        }
    }
# Work is acknowledged only when done, so a worker killed mid-task loses nothing.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# The workers keep LOGGING above (config/celery.py configures it on Celery's setup_logging
# signal; HUB_LOG_LEVEL, not --loglevel, sets the level): JSON lines like the web's.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Work that waits on other parties (outbound delivery, enrollment lookups, usage
# reconciliation) has its own queue, so applying confirmations ("celery", the default queue)
# is never stuck behind a slow party. A worker started without -Q consumes every queue in
# CELERY_TASK_QUEUES (the embedded default and the README keep working); docs/operations.md,
# "Queues", for dedicated workers.
HUB_OUTBOUND_QUEUE = "outbound"
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (
    Queue(CELERY_TASK_DEFAULT_QUEUE, routing_key=CELERY_TASK_DEFAULT_QUEUE),
    Queue(HUB_OUTBOUND_QUEUE, routing_key=HUB_OUTBOUND_QUEUE),
)
CELERY_TASK_ROUTES = {
    "entitlements.tasks.drain_recipient": {"queue": HUB_OUTBOUND_QUEUE},
    "entitlements.tasks.resolve_enrollments": {"queue": HUB_OUTBOUND_QUEUE},
    "entitlements.tasks.reconcile_usage": {"queue": HUB_OUTBOUND_QUEUE},
}

# The workers' tuning (outbound delivery and expiry, confirmations, chain clients and the
# periodic tasks) lives in a module of its own.
from config.work_settings import *  # noqa: E402, F403
