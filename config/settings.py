"""One settings module: every value comes from the environment, with a default that works on a
fresh machine (SQLite file database, a Celery broker on the local filesystem, no servers).

Malformed values fail at start-up with a message that names the variable.
"""

from __future__ import annotations

import os
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
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and _env_bool("DJANGO_REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set in production.")
    SECRET_KEY = "insecure-local-development-key-change-me-in-production"

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
    "django_htmx.middleware.HtmxMiddleware",
    # 503 with "try again" instead of a 500 page while the database is unreachable.
    "core.middleware.DatabaseUnavailableMiddleware",
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
        # SQLite serialises writers; a wait beats "database is locked" when the web server and
        # the worker write at the same moment.
        config.setdefault("OPTIONS", {})["timeout"] = 20
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
# Failed logins allowed per address and per username in 15 minutes.
LOGIN_FAILURES_ALLOWED = _env_int("LOGIN_FAILURES_ALLOWED", 10, minimum=1)
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


# --- Training ----------------------------------------------------------------------------------
# A running run that has not reported for this long belongs to a dead worker.
TRAINING_HEARTBEAT_TIMEOUT_S = _env_int("TRAINING_HEARTBEAT_TIMEOUT_S", 120, minimum=5)
# Processes per node for one run (0: one per visible GPU, one on a machine without). More than
# one, or any TRAINING_TORCHRUN_ARGS (for several machines, e.g. "--nnodes 2 --node-rank 0
# --rdzv-backend c10d --rdzv-endpoint head:29500"), runs the job under torchrun.
TRAINING_PROCESSES = _env_int("TRAINING_PROCESSES", 0)
TRAINING_TORCHRUN_ARGS = os.environ.get("TRAINING_TORCHRUN_ARGS", "")
# A judge's scoring or flagging job running longer than this belongs to a dead worker.
JUDGE_JOB_TIMEOUT_S = _env_int("JUDGE_JOB_TIMEOUT_S", 3 * 3600, minimum=60)


# --- Datasets ----------------------------------------------------------------------------------
# A snapshot build that has written nothing for this long belongs to a dead worker (a live build
# records its progress every few seconds).
DATASET_BUILD_STALE_AFTER_S = _env_int("DATASET_BUILD_STALE_AFTER_S", 300, minimum=30)


# --- Cache (rate limits, vote counters) --------------------------------------------------------
_CACHE_URL = os.environ.get("CACHE_URL", "")
if _CACHE_URL:
    if urlparse(_CACHE_URL).scheme not in {"redis", "rediss", "locmem"}:
        raise ImproperlyConfigured(f"CACHE_URL={_CACHE_URL!r}: use redis://host:6379/1.")
    CACHES = {"default": env.cache_url_config(_CACHE_URL)}
else:
    # Per process. It holds an entry per active API token and two rate counters per active user
    # and address: Django's default of 300 entries would evict them, and the limits with them,
    # as soon as a few hundred people vote at once.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": {"MAX_ENTRIES": _env_int("CACHE_MAX_ENTRIES", 50000, minimum=300)},
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
ARENA_MIN_VOTES = _env_int("ARENA_MIN_VOTES", 0)
# Real Chatbot Arena votes that `seed_demo` loads into the demo leaderboard when the file exists.
DEMO_ARENA_VOTES = os.environ.get(
    "DEMO_ARENA_VOTES",
    str(BASE_DIR.parent / "shared/data/arena_human_preference_140k_votes.csv.gz"),
)


# --- REST API ---------------------------------------------------------------------------------
# Seconds an API token's user and roles stay cached (0: read them on every request). Revoking
# a token or changing a role clears it at once in the process that made the change, and in
# every process when CACHE_URL names a shared cache.
API_TOKEN_CACHE_SECONDS = _env_int("API_TOKEN_CACHE_SECONDS", 10)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an API call without credentials gets 401 with WWW-Authenticate.
        "core.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "RLHF Platform API",
    "DESCRIPTION": "Arena battles, annotation, dataset exports and training runs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Two different "format" choice sets: a dataset's export format and an import file's type.
    "ENUM_NAME_OVERRIDES": {
        "DatasetFormatEnum": "annotation.models.SnapshotFormat",
        "ImportFileFormatEnum": ["", "jsonl", "csv", "parquet"],
        # Two different "kind" choice sets: a training run's and a judge job's.
        "TrainingRunKindEnum": "training.models.RunKind",
        "JudgeJobKindEnum": "training.models.JudgeJobKind",
    },
}


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
    "reap-stale-generations": {
        "task": "arena.tasks.generations_reap_stale",
        "schedule": 60.0,
    },
    "requeue-generations": {
        "task": "arena.tasks.generations_requeue",
        "schedule": 30.0,
    },
    "requeue-training-runs": {
        "task": "training.tasks.training_runs_requeue",
        "schedule": 120.0,
        "options": {"queue": "default"},
    },
    "requeue-judge-jobs": {
        "task": "training.tasks.judge_jobs_requeue",
        "schedule": 120.0,
        "options": {"queue": "default"},
    },
    "requeue-training-reports": {
        "task": "training.tasks.training_reports_requeue",
        "schedule": 300.0,
        "options": {"queue": "default"},
    },
    "reap-silent-training-runs": {
        "task": "training.tasks.training_runs_reap_silent",
        "schedule": 60.0,
        "options": {"queue": "default"},
    },
    "reap-stale-dataset-builds": {
        "task": "annotation.tasks.snapshots_reap_stale",
        "schedule": 60.0,
    },
    "requeue-dataset-builds": {
        "task": "annotation.tasks.snapshots_requeue",
        "schedule": 120.0,
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
TORCH_NUM_THREADS = _env_int("TORCH_NUM_THREADS", 1, minimum=1)
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

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    X_FRAME_OPTIONS = "DENY"
    SECURE_CONTENT_TYPE_NOSNIFF = True
