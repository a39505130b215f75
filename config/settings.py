"""Settings of the Aanspraakmanager, read from the environment.

With nothing set the hub runs embedded: SQLite in ``var/`` and a Celery broker on the
filesystem, so a laptop needs no outside service. ``DATABASE_URL`` and
``CELERY_BROKER_URL`` switch to PostgreSQL and Redis. ``HUB_ENV=production`` refuses to
start without ``DJANGO_SECRET_KEY`` and ``DJANGO_ALLOWED_HOSTS``.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    """Read a boolean from the environment: 1/true/yes/on are true."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    """Read a comma-separated list from the environment."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


HUB_ENV = os.environ.get("HUB_ENV", "development")
PRODUCTION = HUB_ENV == "production"
DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")
if PRODUCTION:
    if not SECRET_KEY:
        raise ImproperlyConfigured("HUB_ENV=production requires DJANGO_SECRET_KEY to be set.")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("HUB_ENV=production requires DJANGO_ALLOWED_HOSTS to be set.")
    if DEBUG:
        raise ImproperlyConfigured("HUB_ENV=production refuses DJANGO_DEBUG=1.")
else:
    # Development only: a fixed key so sessions survive restarts; never used in production.
    SECRET_KEY = SECRET_KEY or "dev-only-insecure-key-do-not-use-in-production"
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["localhost", "127.0.0.1", "[::1]", "testserver"]

# Where the embedded default keeps its SQLite file and broker folders.
HUB_DATA_DIR = Path(os.environ.get("HUB_DATA_DIR", BASE_DIR / "var"))

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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "aanspraak.middleware.ApiVersionMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
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

if os.environ.get("DATABASE_URL"):
    DATABASES = {
        "default": dj_database_url.parse(
            os.environ["DATABASE_URL"],
            conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
            conn_health_checks=True,
        )
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend with the health check at most once per window (aanspraak/db).
        DATABASES["default"]["ENGINE"] = "aanspraak.db.postgresql"
        # JIT compiles for 100+ ms per query above jit_above_cost, more than the hub's short
        # OLTP queries take (docs/operations.md, "Indexes and JIT"); DATABASE_JIT=on restores it.
        jit = "on" if os.environ.get("DATABASE_JIT", "").lower() in {"on", "1", "true"} else "off"
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["options"] = f"{options.get('options', '')} -c jit={jit}".strip()
        # The confirmation INSERT binds on the server and is prepared from its 5th use on a
        # connection (docs/performance.md, P2); off for a pooler that cannot keep prepared
        # statements (PgBouncer before 1.21, or without max_prepared_statements).
        prepared = os.environ.get("DATABASE_PREPARED_STATEMENTS", "on").lower()
        options["prepare_threshold"] = None if prepared in {"off", "0", "false"} else 5
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

# A persistent connection that passed a health check (or was opened) this recently is not
# checked again before the next request's first query (aanspraak/db/postgresql/base.py).
DATABASE_HEALTH_CHECK_SECONDS = float(os.environ.get("DATABASE_HEALTH_CHECK_SECONDS", "1"))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Tests and their subprocesses use a fast hasher (client secrets are hashed with it); never in
# production, where Django's default (PBKDF2) applies.
if not PRODUCTION and env_list("DJANGO_PASSWORD_HASHERS"):
    PASSWORD_HASHERS = env_list("DJANGO_PASSWORD_HASHERS")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "Europe/Amsterdam"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", HUB_DATA_DIR / "static"))

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION

# --- The chain's API ------------------------------------------------------------------------
# The full version of the hub's API, sent as the API-Version header on every response.
HUB_API_VERSION = "1.0.0"

# Keys for secrets the hub must be able to read back (the credentials it uses towards other
# parties). Comma-separated Fernet keys, newest first; the first encrypts, all decrypt.
HUB_FIELD_ENCRYPTION_KEYS = env_list("HUB_FIELD_ENCRYPTION_KEYS")
if PRODUCTION and not HUB_FIELD_ENCRYPTION_KEYS:
    raise ImproperlyConfigured("HUB_ENV=production requires HUB_FIELD_ENCRYPTION_KEYS to be set.")

OAUTH2_PROVIDER_APPLICATION_MODEL = "aanspraak.Client"
OAUTH2_PROVIDER = {
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(os.environ.get("HUB_TOKEN_LIFETIME", "3600")),
    "SCOPES_BACKEND_CLASS": "aanspraak.scopes.ChainScopes",
    "PKCE_REQUIRED": False,
    # private_key_jwt next to the client secret (aanspraak/services/client_assertions.py).
    "OAUTH2_VALIDATOR_CLASS": "aanspraak.api.oauth_validator.HubOAuth2Validator",
}
# private_key_jwt: the audience a client assertion must name (default: the token endpoint's
# URL as the client called it); a jwksUri's fetch timeout and how long its keys are kept.
HUB_TOKEN_AUDIENCE = os.environ.get("HUB_TOKEN_AUDIENCE") or None
HUB_JWKS_TIMEOUT = float(os.environ.get("HUB_JWKS_TIMEOUT", "5"))
HUB_JWKS_CACHE_SECONDS = int(os.environ.get("HUB_JWKS_CACHE_SECONDS", "3600"))

# Failed client authentications one client id may have from one address in a calendar minute
# before the token endpoint answers 429 until the minute is over; 0 turns it off.
HUB_TOKEN_FAILURES_PER_MINUTE = int(os.environ.get("HUB_TOKEN_FAILURES_PER_MINUTE", "10"))

# Seconds a process may keep using what it read of an access token (client, party, scopes,
# expiry): a token revoked or a client changed elsewhere keeps working at most this long;
# an expired token is refused at once. 0 turns the cache off. docs/api.md#authentication.
HUB_TOKEN_CACHE_SECONDS = float(os.environ.get("HUB_TOKEN_CACHE_SECONDS", "30"))

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
HUB_RATE_LIMIT = os.environ.get("HUB_RATE_LIMIT") or None

SPECTACULAR_SETTINGS = {
    "TITLE": "Aanspraakmanager API",
    "DESCRIPTION": "The entitlement hub of the Edu-V chain for digital learning materials.",
    "VERSION": HUB_API_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
}

# Issue 3: Swagger UI assets served from the installed sidecar package (works offline, no
# CDN), the seeds' enum names, and StatusResponse JSON for error answers outside DRF views.
INSTALLED_APPS += ["drf_spectacular_sidecar"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("aanspraak.middleware.ApiVersionMiddleware") + 1,
    "aanspraak.api.middleware.StatusResponseErrorMiddleware",
)
MIDDLEWARE.insert(
    MIDDLEWARE.index("aanspraak.api.middleware.StatusResponseErrorMiddleware") + 1,
    "aanspraak.api.request_checks.RequestChecksMiddleware",
)
SPECTACULAR_SETTINGS.update(
    {
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
        "ENUM_GENERATE_CHOICE_DESCRIPTION": False,
        "ENUM_NAME_OVERRIDES": {
            "EntitlementTypeEnum": "entitlements.statuses.EntitlementType",
            "EntitlementStatusEnum": "entitlements.statuses.EntitlementStatus",
            "UrlStatusEnum": "entitlements.statuses.UrlStatus",
            "OrganisationIdTypeEnum": "aanspraak.choices.OrganisationIdType",
            "UserIdTypeEnum": "aanspraak.choices.UserIdType",
        },
    }
)

# OpenAPI completeness: the request enums of seed 003 (no "expired" entitlement status, no
# "uninitialized" URL status) get their own names next to the stored unions. The serializers'
# choices are plain value lists, so the overrides name the value lists (a TextChoices class
# hashes its labels too and would not match).
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "EntitlementTypeEnum": "entitlements.statuses.EntitlementType.values",
        "EntitlementStatusEnum": "entitlements.statuses.EntitlementStatus.values",
        "UrlStatusEnum": "entitlements.statuses.UrlStatus.values",
        "OrganisationIdTypeEnum": "aanspraak.choices.OrganisationIdType.values",
        "UserIdTypeEnum": "aanspraak.choices.UserIdType.values",
        "ConfirmedEntitlementStatusEnum": (
            "confirmations.api.serializers.CONFIRMABLE_ENTITLEMENT_STATUSES"
        ),
        "ConfirmedUrlStatusEnum": "confirmations.api.serializers.CONFIRMABLE_URL_STATUSES",
    }
)

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
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
# Django's cache holds what all web processes must share (the token endpoint's failure counts):
# the broker's Redis, or files under HUB_DATA_DIR on the embedded default.
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ.get("HUB_CACHE_URL", CELERY_BROKER_URL),
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
CELERY_BEAT_SCHEDULE: dict = {
    "heartbeat": {"task": "aanspraak.tasks.heartbeat", "schedule": 60.0},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("HUB_LOG_LEVEL", "INFO")},
    # httpx logs every request at INFO: one line per outbound message. Every attempt is
    # recorded in the database (DeliveryAttempt) already; failures are logged by dispatch.
    "loggers": {"httpx": {"level": os.environ.get("HUB_HTTPX_LOG_LEVEL", "WARNING")}},
}

# --- Outbound delivery, intake and expiry (entitlements.outbox, aanspraak.outbound) --------
# Seconds one outbound HTTP call may take (connect capped at 5 s).
HUB_OUTBOUND_TIMEOUT = float(os.environ.get("HUB_OUTBOUND_TIMEOUT", "10"))
# Concurrent sends within one recipient's batch, and the batch size of one claim.
HUB_OUTBOUND_CONCURRENCY = int(os.environ.get("HUB_OUTBOUND_CONCURRENCY", "16"))
HUB_OUTBOUND_BATCH_SIZE = int(os.environ.get("HUB_OUTBOUND_BATCH_SIZE", "100"))
# Time budget of one drain task before it queues itself again behind other recipients.
HUB_OUTBOUND_DRAIN_SECONDS = float(os.environ.get("HUB_OUTBOUND_DRAIN_SECONDS", "30"))
# How often beat sweeps for due messages (retries and lost wake-ups).
HUB_OUTBOUND_SWEEP_SECONDS = float(os.environ.get("HUB_OUTBOUND_SWEEP_SECONDS", "10"))
# Retries: exponential backoff with full jitter from the base, capped per wait, until the
# horizon after the message was created; then the message fails for good.
HUB_RETRY_BASE_SECONDS = float(os.environ.get("HUB_RETRY_BASE_SECONDS", "5"))
HUB_RETRY_MAX_DELAY_SECONDS = float(os.environ.get("HUB_RETRY_MAX_DELAY_SECONDS", "3600"))
HUB_RETRY_HORIZON_SECONDS = float(os.environ.get("HUB_RETRY_HORIZON_SECONDS", str(48 * 3600)))
HUB_EXPIRY_BATCH_SIZE = int(os.environ.get("HUB_EXPIRY_BATCH_SIZE", "5000"))
HUB_EXPIRY_SECONDS = float(os.environ.get("HUB_EXPIRY_SECONDS", "3600"))
CELERY_BEAT_SCHEDULE["outbound-sweep"] = {
    "task": "entitlements.tasks.sweep_outbound",
    "schedule": HUB_OUTBOUND_SWEEP_SECONDS,
}
CELERY_BEAT_SCHEDULE["expire-entitlements"] = {
    "task": "entitlements.tasks.expire_entitlements",
    "schedule": HUB_EXPIRY_SECONDS,
}
# A delivery order of 100,000 students with ECK iDs is some 15-30 MB of JSON.
# The largest request body, in bytes: 413 above it (aanspraak/api/request_checks.py). The
# delivery orders have their own limit; HUB_MAX_REQUEST_BYTES is its older name.
HUB_MAX_BODY_BYTES = int(os.environ.get("HUB_MAX_BODY_BYTES", str(1024 * 1024)))
HUB_MAX_ORDER_BYTES = int(
    os.environ.get("HUB_MAX_ORDER_BYTES", os.environ.get("HUB_MAX_REQUEST_BYTES", str(32 << 20)))
)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(HUB_MAX_BODY_BYTES, HUB_MAX_ORDER_BYTES)

# --- Confirmations: applying them, waking the workers, the sweep (confirmations/) ---------
# Confirmations a worker claims and applies in one transaction.
HUB_APPLY_BATCH_SIZE = int(os.environ.get("HUB_APPLY_BATCH_SIZE", "500"))
# Test only: seconds a worker waits inside a claimed batch (to kill it mid-batch).
HUB_APPLY_BATCH_DELAY = float(os.environ.get("HUB_APPLY_BATCH_DELAY", "0"))
# After a batch that was not full a worker waits this long before its next claim, so that a
# steady stream is applied in fewer, larger batches (docs/performance.md, P5).
HUB_APPLY_GATHER_SECONDS = float(os.environ.get("HUB_APPLY_GATHER_SECONDS", "0.1"))
# A wake-up of the workers is sent at most once per this many milliseconds while one is queued
# or working (a Redis key, held by the working task, cleared before its last claim); also how
# long a lost wake-up or a killed worker keeps further wake-ups back.
HUB_WAKE_DEBOUNCE_MS = int(os.environ.get("HUB_WAKE_DEBOUNCE_MS", "5000"))
# The sweep runs every INTERVAL seconds and wakes the workers when confirmations have been
# pending for longer than AGE seconds (e.g. accepted while Redis was down).
HUB_CONFIRMATION_SWEEP_INTERVAL = float(os.environ.get("HUB_CONFIRMATION_SWEEP_INTERVAL", "30"))
HUB_CONFIRMATION_SWEEP_AGE = float(os.environ.get("HUB_CONFIRMATION_SWEEP_AGE", "10"))
CELERY_BEAT_SCHEDULE["confirmations-sweep"] = {
    "task": "confirmations.tasks.sweep_pending",
    "schedule": HUB_CONFIRMATION_SWEEP_INTERVAL,
}

# --- Chain clients: enrollment lookups and usage reconciliation (docs/chain-clients.md) ----
# Enrollment lookups one resolver claims at a time (sent concurrently, HUB_OUTBOUND_CONCURRENCY).
HUB_ENROLLMENT_BATCH_SIZE = int(os.environ.get("HUB_ENROLLMENT_BATCH_SIZE", "50"))
# How often beat looks for due enrollment lookups (retries and lost wake-ups).
HUB_ENROLLMENT_SWEEP_SECONDS = float(os.environ.get("HUB_ENROLLMENT_SWEEP_SECONDS", "10"))
# How often every contract's usage is reconciled with the licence registries.
HUB_USAGE_RECONCILE_SECONDS = float(os.environ.get("HUB_USAGE_RECONCILE_SECONDS", "86400"))
CELERY_BEAT_SCHEDULE["enrollment-sweep"] = {
    "task": "entitlements.tasks.sweep_enrollments",
    "schedule": HUB_ENROLLMENT_SWEEP_SECONDS,
}
CELERY_BEAT_SCHEDULE["usage-reconcile"] = {
    "task": "entitlements.tasks.reconcile_usage",
    "schedule": HUB_USAGE_RECONCILE_SECONDS,
}

# --- Celery queues: outbound work on a queue of its own (docs/operations.md, "Queues") -----
# Work that waits on other parties (outbound delivery, enrollment lookups) has its own queue,
# so applying confirmations ("celery", the default queue) is never stuck behind a slow party.
# A worker started without -Q consumes every queue in CELERY_TASK_QUEUES (the embedded
# default and the README keep working); see docs/operations.md for dedicated workers.
from kombu import Queue as _KombuQueue  # noqa: E402

HUB_OUTBOUND_QUEUE = "outbound"
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (
    _KombuQueue(CELERY_TASK_DEFAULT_QUEUE, routing_key=CELERY_TASK_DEFAULT_QUEUE),
    _KombuQueue(HUB_OUTBOUND_QUEUE, routing_key=HUB_OUTBOUND_QUEUE),
)
CELERY_TASK_ROUTES = {
    "entitlements.tasks.drain_recipient": {"queue": HUB_OUTBOUND_QUEUE},
    "entitlements.tasks.resolve_enrollments": {"queue": HUB_OUTBOUND_QUEUE},
    # Calls every registry: slow parties must not hold up the confirmation workers either.
    "entitlements.tasks.reconcile_usage": {"queue": HUB_OUTBOUND_QUEUE},
}
