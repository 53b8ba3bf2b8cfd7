"""One settings module: every value comes from the environment, with a default that works on a
fresh machine (SQLite file database, a Celery broker on the local filesystem, no servers).

Malformed values fail at start-up with a message that names the variable.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from urllib.parse import urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env file is optional; values already in the environment win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no).")


def _env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}.")
    return value


VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var")).resolve()

DEBUG = _env_bool("DJANGO_DEBUG", False)
DEVELOPMENT_SECRET_KEY = "insecure-local-development-key-change-me-in-production"
# Values that have been published as examples: never a real key.
_PUBLIC_SECRET_KEYS = {DEVELOPMENT_SECRET_KEY, "change-me"}


def _local_secret_key(path: Path) -> str:
    """A random key made once for this machine and kept in VAR_DIR (readable by its owner
    only), so that a fresh checkout runs without DEBUG and without a published key."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it a moment ago
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = DEVELOPMENT_SECRET_KEY
    elif _env_bool("DJANGO_REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set in production.")
    else:
        SECRET_KEY = _local_secret_key(VAR_DIR / "secret_key")
if not DEBUG and SECRET_KEY in _PUBLIC_SECRET_KEYS:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is a published example key; set a secret one (or DJANGO_DEBUG=1 "
        "for development)."
    )

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(
        ","
    )
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]


# --- Security ---------------------------------------------------------------------------------
def _networks(name: str) -> list[str]:
    items = [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not an address or network (e.g. 10.0.0.0/8)."
            ) from None
    return items


def _proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """ "X-Forwarded-Proto" (or "X-Forwarded-Proto=https"): the header a trusted proxy sets
    to say the client's request came over HTTPS."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    header, _, value = raw.partition("=")
    if not header.strip() or any(c.isspace() for c in header.strip()):
        raise ImproperlyConfigured(f"{name}={raw!r}: use a header name such as X-Forwarded-Proto.")
    return "HTTP_" + header.strip().upper().replace("-", "_"), value.strip() or "https"


# Proxies (addresses or networks) whose X-Forwarded-For is believed, for the client address
# that login and rate limits count by (core/client.py). Empty: REMOTE_ADDR is the client.
TRUSTED_PROXIES = _networks("TRUSTED_PROXIES")
# Behind a proxy that ends TLS: the header it sets for an HTTPS request (e.g.
# X-Forwarded-Proto). Only when the proxy always sets or overwrites it.
SECURE_PROXY_SSL_HEADER = _proxy_ssl_header("DJANGO_SECURE_PROXY_SSL_HEADER")
SECURE_SSL_REDIRECT = _env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # a load balancer's plain-HTTP check
SECURE_HSTS_SECONDS = _env_int("DJANGO_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = _env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
# Cookies only over HTTPS: on by default once the site redirects to HTTPS.
SESSION_COOKIE_SECURE = _env_bool("DJANGO_SESSION_COOKIE_SECURE", SECURE_SSL_REDIRECT)
CSRF_COOKIE_SECURE = _env_bool("DJANGO_CSRF_COOKIE_SECURE", SECURE_SSL_REDIRECT)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Scripts and styles from this site only (and elements carrying this response's nonce); style
# attributes stay allowed (CSS3 bars and heat-map cells computed per row), never scripts in
# attributes. core/security.py sets the header; empty turns it off.
CONTENT_SECURITY_POLICY = os.environ.get(
    "DJANGO_CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; "
    "style-src-attr 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'",
)
# A policy browsers report but do not enforce, to try a stricter one first.
CONTENT_SECURITY_POLICY_REPORT_ONLY = os.environ.get(
    "DJANGO_CONTENT_SECURITY_POLICY_REPORT_ONLY", ""
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "core",
    "arena",
    "annotation",
    "training",
    "evaluation",
    "home",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # 503 with "try again" instead of a 500 page while the database is unreachable.
    "core.middleware.DatabaseUnavailableMiddleware",
    # A body over DATA_UPLOAD_MAX_MEMORY_SIZE under /api/ or /v1/ is a 413 in JSON.
    "core.api_errors.ApiErrorMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "core.context_processors.roles",
                "core.security.csp_nonce",
            ],
        },
    }
]


# --- Database ---------------------------------------------------------------------------------
_DB_SCHEMES = {"sqlite", "postgres", "postgresql", "pgsql", "psql"}


def _database_from_url(url: str) -> dict:
    scheme = urlparse(url).scheme
    if scheme not in _DB_SCHEMES:
        raise ImproperlyConfigured(
            f"DATABASE_URL={url!r} is not understood: use sqlite:///path/to/db.sqlite3 or "
            "postgres://user:password@host:5432/name."
        )
    try:
        config = env.db_url_config(url)
    except Exception as exc:  # environ raises several types on malformed URLs
        raise ImproperlyConfigured(f"DATABASE_URL={url!r} is malformed: {exc}") from None
    if scheme == "sqlite":
        name = config.get("NAME", "")
        if name and name != ":memory:":
            Path(name).parent.mkdir(parents=True, exist_ok=True)
        # SQLite serialises writers. WAL lets readers (an export, a snapshot build) go on while
        # one connection writes; a write transaction takes the lock at BEGIN (IMMEDIATE), so it
        # waits up to `timeout` seconds for its turn instead of failing at once with "database
        # is locked" when it upgrades from a read; synchronous=NORMAL is safe under WAL.
        config.setdefault("OPTIONS", {}).update(
            timeout=_env_int("SQLITE_BUSY_TIMEOUT_S", 20, minimum=1),
            transaction_mode="IMMEDIATE",
            init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        )
        config["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    else:
        if not config.get("NAME"):
            raise ImproperlyConfigured(f"DATABASE_URL={url!r} names no database.")
        config["CONN_MAX_AGE"] = _env_int("DATABASE_CONN_MAX_AGE", 60)
        config["CONN_HEALTH_CHECKS"] = True
        # Django's backend, with a health check that asks the kernel before the server.
        config["ENGINE"] = "core.db.postgresql"
    return config


DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {"default": _database_from_url(DATABASE_URL)}
# The hottest statements (an API token's user, a vote) are prepared once per PostgreSQL
# connection. Turn off behind a pooler in transaction mode that cannot keep prepared statements.
DATABASE_PREPARED_STATEMENTS = _env_bool("DATABASE_PREPARED_STATEMENTS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
# Password guessing (core/login_throttle.py, the login page and the API token endpoint alike):
# failed logins allowed for one username from one address, from one address, and for one
# username, before each further attempt waits 1, 2, 4... seconds, at most LOGIN_BACKOFF_MAX_S.
LOGIN_FAILURES_ALLOWED = _env_int("LOGIN_FAILURES_ALLOWED", 5, minimum=1)
LOGIN_ADDRESS_FAILURES_ALLOWED = _env_int("LOGIN_ADDRESS_FAILURES_ALLOWED", 30, minimum=1)
LOGIN_USERNAME_FAILURES_ALLOWED = _env_int("LOGIN_USERNAME_FAILURES_ALLOWED", 20, minimum=1)
LOGIN_BACKOFF_MAX_S = _env_int("LOGIN_BACKOFF_MAX_S", 900, minimum=1)
# Failures are forgotten this long after the last one.
LOGIN_FAILURE_WINDOW_S = _env_int("LOGIN_FAILURE_WINDOW_S", 3600, minimum=60)
# An address a user logged in from is exempt from the address-wide and username-wide rules
# for this many days (0: never exempt).
LOGIN_KNOWN_ADDRESS_DAYS = _env_int("LOGIN_KNOWN_ADDRESS_DAYS", 30)
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Without a collectstatic step (tests, runserver) whitenoise serves straight from the finders.
WHITENOISE_USE_FINDERS = True
DATA_UPLOAD_MAX_MEMORY_SIZE = _env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024)
# The largest prompt file an import reads into memory (refused by its size before reading).
PROMPT_IMPORT_MAX_BYTES = _env_int("PROMPT_IMPORT_MAX_BYTES", 10 * 1024 * 1024, minimum=1)


# --- Background jobs ---------------------------------------------------------------------------
# A queued job is re-sent when its message is lost: it has waited this long while no job of its
# queue was running with a live heartbeat (an idle worker takes a message within seconds; one
# behind a long run waits, and is not re-sent). See core/jobs.py.
JOB_RESEND_AFTER_S = _env_int("JOB_RESEND_AFTER_S", 120, minimum=1)


# --- Training ----------------------------------------------------------------------------------
# A running run, judge job or evaluation report that has not beaten for this long belongs to a
# dead worker (they beat from a side thread, also while loading models).
TRAINING_HEARTBEAT_TIMEOUT_S = _env_int("TRAINING_HEARTBEAT_TIMEOUT_S", 120, minimum=5)
# Processes per node for one run (0: one per visible GPU, one on a machine without). More than
# one, or any TRAINING_TORCHRUN_ARGS (for several machines, e.g. "--nnodes 2 --node-rank 0
# --rdzv-backend c10d --rdzv-endpoint head:29500"), runs the job under torchrun.
TRAINING_PROCESSES = _env_int("TRAINING_PROCESSES", 0)
TRAINING_TORCHRUN_ARGS = os.environ.get("TRAINING_TORCHRUN_ARGS", "")


# --- Datasets ----------------------------------------------------------------------------------
# A snapshot build that has written nothing for this long belongs to a dead worker (a live build
# records its progress every few seconds).
DATASET_BUILD_STALE_AFTER_S = _env_int("DATASET_BUILD_STALE_AFTER_S", 300, minimum=30)


# --- Cache (rate limits, login backoff, vote counters, API tokens) -----------------------------
# Shared by every process, so that limits and revocations hold across all of them: Redis when
# CACHE_URL names it, otherwise a table of the database (`manage.py createcachetable`, which
# scripts/serve.sh and the compose file run). locmem:// (per process) is for tests only.
_CACHE_URL = os.environ.get("CACHE_URL", "")
# It holds an entry per active API token and a few counters per active user and address:
# Django's default of 300 entries would evict them, and the limits with them.
_CACHE_OPTIONS = {"MAX_ENTRIES": _env_int("CACHE_MAX_ENTRIES", 50000, minimum=300)}
if _CACHE_URL:
    if urlparse(_CACHE_URL).scheme not in {"redis", "rediss", "locmem"}:
        raise ImproperlyConfigured(f"CACHE_URL={_CACHE_URL!r}: use redis://host:6379/1.")
    CACHES = {"default": env.cache_url_config(_CACHE_URL)}
    if urlparse(_CACHE_URL).scheme == "locmem":
        CACHES["default"]["OPTIONS"] = _CACHE_OPTIONS
else:
    CACHES = {
        "default": {
            # Django's, with an atomic increment in two statements (core/cache.py).
            "BACKEND": "core.cache.DatabaseCache",
            "LOCATION": "django_cache",
            "OPTIONS": _CACHE_OPTIONS,
        }
    }


# --- Arena ------------------------------------------------------------------------------------
# Votes per minute a user, or an address, may cast (0 turns the limit off).
ARENA_VOTES_PER_MINUTE = _env_int("ARENA_VOTES_PER_MINUTE", 30)
ARENA_BATTLES_PER_MINUTE = _env_int("ARENA_BATTLES_PER_MINUTE", 20)
# Refit the leaderboard after this many counted votes (and on beat's schedule).
ARENA_REFRESH_EVERY_VOTES = _env_int("ARENA_REFRESH_EVERY_VOTES", 50, minimum=1)
# ...but ask for a refit at most once in this many seconds (per server process with the default
# cache, across all of them with a shared CACHE_URL).
ARENA_REFRESH_MIN_INTERVAL_S = _env_int("ARENA_REFRESH_MIN_INTERVAL_S", 30)
ARENA_BOOTSTRAP_ROUNDS = _env_int("ARENA_BOOTSTRAP_ROUNDS", 1000, minimum=0)
# Models with fewer counted votes are listed apart as provisional, not ranked: their intervals
# are too wide to place them (one or two lucky votes put a model on top). The public arena
# waits for a few hundred votes before ranking a model.
ARENA_MIN_VOTES = _env_int("ARENA_MIN_VOTES", 300, minimum=1)
# A style-controlled board is fitted only when this many battles carry style features
# (imported battle files without conversation metadata carry none).
ARENA_STYLE_MIN_BATTLES = _env_int("ARENA_STYLE_MIN_BATTLES", 200, minimum=1)
# Real Chatbot Arena votes that `seed_demo` loads into the demo leaderboard when the file exists.
DEMO_ARENA_VOTES = os.environ.get(
    "DEMO_ARENA_VOTES",
    str(BASE_DIR.parent / "shared/data/arena_human_preference_140k_votes.csv.gz"),
)


# --- REST API ---------------------------------------------------------------------------------
# Seconds an API token's user and roles stay cached (0: read them on every request). Revoking
# a token, changing a role or a password takes effect at once in every process either way. By
# default only with CACHE_URL: a hit in the database cache costs a query, as the token's own
# (prepared) statement does.
API_TOKEN_CACHE_SECONDS = _env_int("API_TOKEN_CACHE_SECONDS", 10 if _CACHE_URL else 0)
# Days an API token works after its creation (0: until revoked). A token may also be created
# with a shorter lifetime of its own.
API_TOKEN_TTL_DAYS = _env_int("API_TOKEN_TTL_DAYS", 0)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an API call without credentials gets 401 with WWW-Authenticate.
        "core.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Bodies holding a NUL character are refused with a 400 (core/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.JSONParser",
        "core.parsers.FormParser",
        "core.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "core.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
}
# The OpenAPI schema: title, bundled Swagger UI, names of shared enums.
from config.api_schema import SPECTACULAR_SETTINGS  # noqa: E402, F401


# --- Celery -----------------------------------------------------------------------------------
def _broker_settings() -> tuple[str, dict]:
    url = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
    scheme = urlparse(url).scheme
    if scheme not in {"filesystem", "redis", "rediss", "amqp", "memory"}:
        raise ImproperlyConfigured(
            f"CELERY_BROKER_URL={url!r} is not understood: use filesystem:// (default), "
            "redis://host:6379/0 or amqp://user:password@host:5672//."
        )
    if scheme != "filesystem":
        return url, {"visibility_timeout": 3600}
    folder = Path(os.environ.get("CELERY_FILESYSTEM_BROKER_DIR", VAR_DIR / "broker"))
    return url, {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }


CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = _broker_settings()
CELERY_TASK_ALWAYS_EAGER = _env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "arena.tasks.generation_*": {"queue": "generate"},
    "training.tasks.training_run_execute": {"queue": "gpu"},
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE = {
    # Every kind of background job: reap dead workers' jobs, re-send lost messages (core.jobs).
    "sweep-jobs": {
        "task": "core.tasks.jobs_sweep",
        "schedule": float(_env_int("JOB_SWEEP_EVERY_S", 30, minimum=1)),
        "options": {"queue": "default"},
    },
    "refresh-leaderboards": {
        "task": "arena.tasks.leaderboards_refresh",
        "schedule": float(_env_int("ARENA_REFRESH_EVERY_S", 300, minimum=10)),
    },
}


# --- Models and generation --------------------------------------------------------------------
MODEL_CACHE_DIR = Path(os.environ.get("MODEL_CACHE_DIR", VAR_DIR / "models"))
# How many local models one process keeps loaded between tasks.
GENERATION_MODEL_CACHE_SIZE = _env_int("GENERATION_MODEL_CACHE_SIZE", 4, minimum=1)
# A generation still "running" after this many seconds belongs to a dead worker.
GENERATION_STALE_AFTER_S = _env_int("GENERATION_STALE_AFTER_S", 600, minimum=10)
# An evaluation job (answers, judging) whose worker has not beaten for this long is reaped.
EVALUATION_STALE_AFTER_S = _env_int("EVALUATION_STALE_AFTER_S", 600, minimum=10)
TORCH_NUM_THREADS = _env_int("TORCH_NUM_THREADS", 1, minimum=1)
# Answers of one local model a worker process writes together (one forward pass per token for
# all of them); requests past it wait for a place. 1: one at a time through `model.generate`.
# The generation worker runs this many task threads (scripts/serve.sh).
GENERATION_BATCH_SIZE = _env_int("GENERATION_BATCH_SIZE", 16, minimum=1)
# The most new tokens one request may ask of a contestant (more when the contestant's own
# max_new_tokens is higher): a bound on the time one caller can hold a worker.
GENERATION_MAX_NEW_TOKENS = _env_int("GENERATION_MAX_NEW_TOKENS", 2048, minimum=1)
# How long `/v1/chat/completions` waits for a worker's answer before a 504 (a job no worker
# has taken by then is cancelled; one being answered finishes and stays in /api/generations/).
V1_GENERATION_WAIT_S = _env_int("V1_GENERATION_WAIT_S", 300, minimum=1)
# `/v1` calls one server process lets wait for a worker at once (each holds a thread): keep it
# under the threads per process (gunicorn --threads, 4 in scripts/serve.sh) so that health
# checks and pages are still served; past it a call is refused with 503 and Retry-After.
V1_WAITING_PER_PROCESS = _env_int("V1_WAITING_PER_PROCESS", 3)
# The longest pause between two reads of a generation's row while a request waits for it.
GENERATION_POLL_MAX_S = float(os.environ.get("GENERATION_POLL_MAX_S", "0.25"))
# A worker stores the partial answer of a local model at most this often (0: only the end).
GENERATION_PARTIAL_EVERY_S = float(os.environ.get("GENERATION_PARTIAL_EVERY_S", "0.3"))
# Generations one user may ask for per minute, through /v1/chat/completions and
# POST /api/generations/ together (0 turns the limit off). Battles have their own limit.
GENERATIONS_PER_MINUTE = _env_int("GENERATIONS_PER_MINUTE", 20)
# Never reach a model hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
