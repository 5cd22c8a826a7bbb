"""Settings, read from the environment (and an optional .env file) through django-environ.

With nothing set the app runs for development: an embedded PostgreSQL server with its data in
`.pgdata/` (see crm/embedded_db), Celery tasks in-process, mail to the console. Production
differs only by environment variables; `.env.example` lists every one.

Under pytest the `.env` file is not read, and TEST_DATABASE_URL (else DATABASE_URL, else the
embedded server) names the server the tests run against.
"""

import os
import sys
from pathlib import Path

import environ
import phonenumbers
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured

from crm.client_address import trusted_proxies_parse
from crm.queues import task_routes

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A developer's .env never changes what the tests run against: pytest (and the worker processes
# the tests start, which inherit CRM_IGNORE_DOTENV) read only the real environment.
TESTING = "pytest" in sys.modules
if not (TESTING or os.environ.get("CRM_IGNORE_DOTENV")):
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)

_DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG=false the app refuses to start without one: "
            "set SECRET_KEY in the environment (for example: "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    SECRET_KEY = _DEV_SECRET_KEY

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_celery_beat",
    "anymail",
    "axes",
    "csp",
    "crm",
    "customers",
    "privacy",
    "deals",
    "segments",
    "campaigns",
    "insights",
    "journeys",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"

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
                "csp.context_processors.nonce",
                "crm.context_processors.navigation",
                "crm.context_processors.htmx",
            ],
        },
    },
]

# PostgreSQL only. DATABASE_URL (under pytest: TEST_DATABASE_URL first) names the server; unset,
# the embedded server of this checkout is used, started on the first connection.
DATABASE_URL = (env.str("TEST_DATABASE_URL", default="") if TESTING else "") or env.str(
    "DATABASE_URL", default=""
)
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            f"DATABASE_URL must name a PostgreSQL server (postgres://...), not {DATABASE_URL!r}."
        )
else:
    DATABASES = {
        "default": {
            "ENGINE": "crm.embedded_db",
            "NAME": "crm",
            "USER": "postgres",
            "EMBEDDED_ROOT": str(BASE_DIR / ".pgdata"),
        }
    }
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"].setdefault("TEST", {})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "crm" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "STATICFILES_BACKEND",
            default="whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage",
        )
    },
}
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
MEDIA_URL = "media/"

# Mail: EMAIL_URL such as smtp://user:pass@host:587/?tls=True; the console when unset.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="CRM <crm@localhost>")
# Or a provider's HTTP API through django-anymail (docs/campaigns.md): EMAIL_PROVIDER names it
# (amazon_ses, mailgun, postmark, sendgrid, brevo, sparkpost, mailjet, resend) and every
# ANYMAIL_<NAME> variable becomes ANYMAIL["<NAME>"] (ANYMAIL_MAILGUN_API_KEY, ANYMAIL_WEBHOOK_SECRET,
# ...). Its tracking webhook is /campaigns/hooks/<provider>/tracking/.
EMAIL_PROVIDER = env.str("EMAIL_PROVIDER", default="")
if EMAIL_PROVIDER:
    EMAIL_BACKEND = f"anymail.backends.{EMAIL_PROVIDER}.EmailBackend"
ANYMAIL = {
    name.removeprefix("ANYMAIL_"): value
    for name, value in os.environ.items()
    if name.startswith("ANYMAIL_") and value
}

# Celery: in-process (eager) when no broker is configured, so a fresh clone needs no Redis.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL or None)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# Security. Production (DEBUG=false) gets the strict defaults that `check --deploy` asks for.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Reverse proxies (addresses or networks) whose X-Forwarded-For names the client: the address
# that signup and API throttling, sign-in lockouts and consent evidence use
# (crm.client_address). Empty: the header is ignored, the client is the connection's address.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
try:
    trusted_proxies_parse(TRUSTED_PROXIES)
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content Security Policy: only our own origin; scripts never inline (nonce for the few
# bootstrapping snippets), styles from our own files.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# Login throttling: lock a username from one address after repeated failures (not the whole
# address, so one office behind a NAT is not locked out by one person).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_CLIENT_IP_CALLABLE = "crm.client_address.client_address"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "crm.api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "crm.api.schema.AutoSchema",
    # Request bodies are JSON; an endpoint that takes a file upload adds MultiPartParser itself.
    # (Pages keep their forms: none of them posts to /api/.)
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # A service's django ValidationError is a 400 of the same shape as a serializer's errors.
    "EXCEPTION_HANDLER": "crm.api.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "crm.api.throttling.ClientAnonRateThrottle",
        "crm.api.throttling.ClientUserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="60/min"),
        "user": env.str("API_THROTTLE_USER", default="5000/hour"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "CRM API",
    "DESCRIPTION": "Accounts, customers, purchases, consent, segments and campaigns.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # A choice that may be blank or null lists '' and null (BlankEnum, NullEnum), so a generated
    # client accepts a customer with no income band (crm/api/schema.py).
    "ENUM_ADD_EXPLICIT_BLANK_NULL_CHOICE": True,
    # Request bodies have components of their own (<Name>Request) without the read-only fields,
    # so a generated client never asks for an id or a status to create something.
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        # Schemas generated elsewhere (the rule language), as given.
        "crm.api.schema.postprocess_schema_components",
    ],
    "ENUM_NAME_OVERRIDES": {
        "AccountKindEnum": "customers.models.Account.Kind",
        "NoteKindEnum": "customers.models.Note.Kind",
        "PurchaseChannelEnum": "customers.models.Purchase.Channel",
        "RequestChannelEnum": "privacy.models.RequestChannel",
        "RequestStatusEnum": "privacy.models.RequestStatus",
        # Background jobs (imports, exports, segment refreshes) share one set of states.
        "JobStatusEnum": "crm.jobs.JobStatus",
        "JobStateEnum": "crm.jobs.JOB_STATES",
        "ConsentStateEnum": "privacy.models.ConsentStatus",
        "ActivityKindEnum": "deals.models.Activity.Kind",
        "SurveyKindEnum": "insights.models.Survey.Kind",
        "RfmClassEnum": "segments.ml.models.RfmClass",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# Product settings.
# When true, every sales user sees every account and customer; otherwise only the ones they own.
CRM_SALES_SEE_ALL = env.bool("CRM_SALES_SEE_ALL", default=False)
# Phone numbers written without a country code (030 1234567) are read as numbers of this region
# (ISO 3166 code); numbers with one (+49 30 1234567, 0049 ...) need none. Set it to the country
# most of your customers' numbers come from.
PHONE_DEFAULT_REGION = env.str("PHONE_DEFAULT_REGION", default="DE").upper()
if PHONE_DEFAULT_REGION not in phonenumbers.SUPPORTED_REGIONS:
    raise ImproperlyConfigured(
        f"PHONE_DEFAULT_REGION: {PHONE_DEFAULT_REGION!r} is not a region phone numbers are known "
        "for (an ISO 3166 country code such as DE, FR, GB, US)"
    )
# Rows per database batch in imports and other bulk jobs.
CRM_IMPORT_BATCH_SIZE = env.int("CRM_IMPORT_BATCH_SIZE", default=5000)

# Privacy. Suppression hashes are salted with PRIVACY_HASH_SALT (derived from SECRET_KEY when
# unset; set it explicitly in production so rotating SECRET_KEY keeps the suppression list valid).
PRIVACY_HASH_SALT = env.str("PRIVACY_HASH_SALT", default="") or f"privacy-salt:{SECRET_KEY}"
PRIVACY_EXPORT_LINK_MAX_AGE = env.int("PRIVACY_EXPORT_LINK_MAX_AGE", default=7 * 24 * 3600)
# Survey links (insights) work this long after the message was sent.
SURVEY_LINK_MAX_AGE = env.int("SURVEY_LINK_MAX_AGE", default=90 * 24 * 3600)
PRIVACY_PREFERENCE_LINK_MAX_AGE = env.int("PRIVACY_PREFERENCE_LINK_MAX_AGE", default=90 * 24 * 3600)
PRIVACY_CONFIRMATION_LINK_MAX_AGE = env.int(
    "PRIVACY_CONFIRMATION_LINK_MAX_AGE", default=7 * 24 * 3600
)
# The public signup page (privacy/signup.py): double opt-in by emailed link, the purposes it
# offers, submissions per client address per hour, confirmation emails per address per day.
PRIVACY_DOUBLE_OPT_IN = env.bool("PRIVACY_DOUBLE_OPT_IN", default=True)
PRIVACY_SIGNUP_PURPOSES = env.list(
    "PRIVACY_SIGNUP_PURPOSES", default=["email_marketing", "profiling"]
)
PRIVACY_SIGNUP_LIMIT_PER_HOUR = env.int("PRIVACY_SIGNUP_LIMIT_PER_HOUR", default=10)
PRIVACY_SIGNUP_EMAILS_PER_DAY = env.int("PRIVACY_SIGNUP_EMAILS_PER_DAY", default=3)
# Anonymise customers with no purchase, event or consent activity in this many years (0: off).
PRIVACY_RETENTION_YEARS = env.int("PRIVACY_RETENTION_YEARS", default=3)
# Delete the uploaded files and error reports of imports this many days after they finish (0: off).
PRIVACY_IMPORT_FILE_RETENTION_DAYS = env.int("PRIVACY_IMPORT_FILE_RETENTION_DAYS", default=30)
# Erasures are also appended here (JSON lines, ids and hashes only) so they survive a restore.
PRIVACY_ERASURE_LOG_PATH = env.str(
    "PRIVACY_ERASURE_LOG_PATH", default=str(MEDIA_ROOT / "privacy" / "erasures.jsonl")
)

# Campaigns: messages per second per worker process (0: unlimited), send rows per delivery task,
# seconds before a claimed row counts as stuck, the base URL of links in messages, and the shared
# secrets of the webhook channel and of the provider's bounce/complaint webhook.
# Tasks queued by tasks (campaign batches) go to this queue; tests give each worker its own.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CAMPAIGNS_RATE_PER_SECOND = env.float("CAMPAIGNS_RATE_PER_SECOND", default=0)
CAMPAIGNS_BATCH_SIZE = env.int("CAMPAIGNS_BATCH_SIZE", default=500)
# Emails handed to the SMTP server together, one connection each, with one commit for the group
# (PostgreSQL; 1: one commit per message).
CAMPAIGNS_GROUP_SIZE = env.int("CAMPAIGNS_GROUP_SIZE", default=16)
CAMPAIGNS_CLAIM_TIMEOUT = env.int("CAMPAIGNS_CLAIM_TIMEOUT", default=300)
# Journeys: enrolments moved on per round, and the longest wait of a test run (test mode).
JOURNEYS_BATCH_SIZE = env.int("JOURNEYS_BATCH_SIZE", default=1000)
JOURNEYS_TEST_WAIT_SECONDS = env.int("JOURNEYS_TEST_WAIT_SECONDS", default=10)
CAMPAIGNS_SITE_URL = env.str("CAMPAIGNS_SITE_URL", default="http://127.0.0.1:8000")
# The webhook channel signs with a random secret per campaign; CAMPAIGNS_WEBHOOK_SECRET, when
# set, is the one given to new webhook campaigns instead. Never derived from SECRET_KEY: the
# receiver must know it.
CAMPAIGNS_WEBHOOK_SECRET = env.str("CAMPAIGNS_WEBHOOK_SECRET", default="")
CAMPAIGNS_PROVIDER_SECRET = env.str("CAMPAIGNS_PROVIDER_SECRET", default="")

# Real-time segment membership (segments/realtime.py): customers re-evaluated per batch, seconds a
# worker keeps taking batches before it hands over to a fresh task, and how often (seconds) a rule
# whose truth changes with time alone ("last 90 days", "days since") gets a full refresh when its
# segment has no refresh interval of its own (0: never).
SEGMENTS_REALTIME_BATCH_SIZE = env.int("SEGMENTS_REALTIME_BATCH_SIZE", default=500)
SEGMENTS_REALTIME_BUDGET_SECONDS = env.float("SEGMENTS_REALTIME_BUDGET_SECONDS", default=20.0)
SEGMENTS_TIME_RULES_REFRESH_SECONDS = env.int("SEGMENTS_TIME_RULES_REFRESH_SECONDS", default=3600)

# Churn and value training is refused below this many buyers or days of purchase history.
ML_CHURN_MIN_BUYERS = env.int("ML_CHURN_MIN_BUYERS", default=500)
# The win-probability model of deals refuses to train on fewer closed deals, or fewer won or lost.
DEALS_WIN_MODEL_MIN_CLOSED = env.int("DEALS_WIN_MODEL_MIN_CLOSED", default=200)
DEALS_WIN_MODEL_MIN_EACH = env.int("DEALS_WIN_MODEL_MIN_EACH", default=30)
ML_CHURN_MIN_HISTORY_DAYS = env.int("ML_CHURN_MIN_HISTORY_DAYS", default=180)

# A job queued this many seconds with no worker picking it up, or running this many seconds, is
# shown as stuck with what to check (crm/jobs.py).
JOBS_QUEUED_STUCK_AFTER = env.int("JOBS_QUEUED_STUCK_AFTER", default=120)
JOBS_RUNNING_STUCK_AFTER = env.int("JOBS_RUNNING_STUCK_AFTER", default=6 * 3600)

# Running it in production (docs/operations.md).
# Celery queues (crm/queues.py): campaign delivery, heavy jobs (imports, refreshes, ML, exports)
# and the default queue for the rest, each with workers of its own.
CRM_QUEUE_DELIVERY = env.str("CRM_QUEUE_DELIVERY", default="delivery")
CRM_QUEUE_HEAVY = env.str("CRM_QUEUE_HEAVY", default="heavy")
CELERY_TASK_ROUTES = task_routes(delivery=CRM_QUEUE_DELIVERY, heavy=CRM_QUEUE_HEAVY)
# Workers log through LOGGING below (JSON lines in production), not Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Workers and beat write a heartbeat row this often; /readyz wants one younger than the
# maximum age (crm/heartbeat.py).
CRM_HEARTBEAT_INTERVAL = env.int("CRM_HEARTBEAT_INTERVAL", default=15)
# Beat records its heartbeat from its own scheduling loop (crm/beat.py).
CELERY_BEAT_SCHEDULER = "crm.beat:HeartbeatScheduler"
CRM_HEARTBEAT_MAX_AGE = env.int("CRM_HEARTBEAT_MAX_AGE", default=60)

# Logs: "json" (one object per line: a line per request with its request id, a line per task
# carrying the id of the request that queued it) or "text" for a terminal.
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "crm.logs.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "crm.logs.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # The request line of crm.logs replaces Django's own request log lines.
    "loggers": {"django.server": {"level": "WARNING"}},
}
MIDDLEWARE.insert(0, "crm.observability.RequestObservabilityMiddleware")
# Before everything: load balancer probes by address and over http (crm/health.py).
MIDDLEWARE.insert(0, "crm.health.HealthProbeMiddleware")

# Prometheus metrics at /metrics: answered to a scraper that sends
# "Authorization: Bearer <METRICS_TOKEN>", or that connects from METRICS_ALLOWED_IPS; to nobody
# when both are empty. With several processes (gunicorn workers, Celery pool processes), set
# PROMETHEUS_MULTIPROC_DIR to one empty directory for all of them on a host (deploy/).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])

# Backups (manage.py backup / restore): where they are written, and the pg_dump / pg_restore to
# use (by default the newest PostgreSQL client on the machine that is not older than the server).
BACKUP_DIR = Path(env.str("BACKUP_DIR", default=str(BASE_DIR / "backups")))
PG_BIN_DIR = env.str("PG_BIN_DIR", default="")

# An optional streaming replica of the database for heavy reads (crm/db_router.py); after a
# write, a browser's heavy reads stay on the primary for REPLICA_PIN_SECONDS.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
REPLICA_PIN_SECONDS = env.int("REPLICA_PIN_SECONDS", default=10)
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = env.db_url_config(DATABASE_REPLICA_URL)
    DATABASES["replica"]["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    # Under pytest the replica alias is the test database itself, never a second test database.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["crm.db_router.ReplicaRouter"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware"),
    "crm.db_router.ReplicaPinMiddleware",
)
