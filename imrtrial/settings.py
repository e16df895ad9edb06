"""Settings for imrtrial, read from the environment only (see .env.example).

Every variable is parsed by a typed helper of `environs`, which raises at start-up on a value it
cannot read ("DEBUG=maybe"), so a misconfigured trial site never starts half-right.
Unset variables fall back to the embedded default of `make run`: SQLite, eager Celery tasks and
console e-mail. With DEBUG off the production defaults (HTTPS, secure cookies, HSTS) switch on.
"""

import re
from pathlib import Path

from celery.schedules import crontab
from environs import Env

BASE_DIR = Path(__file__).resolve().parent.parent

env = Env()
env.read_env(BASE_DIR / ".env", recurse=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str(
    "SECRET_KEY", default="" if not DEBUG else "insecure-dev-key-only-for-make-run"
)
if not SECRET_KEY:
    raise RuntimeError("SECRET_KEY must be set when DEBUG is off (see .env.example).")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "simple_history",
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "imrtrial",
    "randomization",
    "assessments",
    "registers",
    "fidelity",
    "safety",
    "signoff",
    "monitoring",
    "exports",
    "quality",
    "demo",
    "api",
    "staff",
    "selfreport",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The idle timeout: renews a signed-in session at most once a minute (imrtrial/middleware.py).
    "imrtrial.middleware.IdleTimeoutMiddleware",
    # The browser's language (the language cookie the switcher sets, else Accept-Language);
    # imrtrial.i18n.UserLanguageMiddleware, below, puts the user's own choice before it.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Marks request.user verified when the session passed a second factor; ours, right after,
    # keeps anyone who must use one away from every page until it has (imrtrial/twofactor.py).
    "django_otp.middleware.OTPMiddleware",
    "imrtrial.twofactor.TwoFactorMiddleware",
    # request.user as the user object itself, not behind two lazy wrappers (issue 17).
    "imrtrial.middleware.ResolvedUserMiddleware",
    # While a tablet is handed over to a participant, nothing but its pages (selfreport).
    "selfreport.middleware.HandOverMiddleware",
    # The signed-in user's language preference, else their trial's language (imrtrial/i18n.py).
    "imrtrial.i18n.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: it reads the outcome of authentication.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "imrtrial.urls"
WSGI_APPLICATION = "imrtrial.wsgi.application"

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
        },
    },
]

DATABASES = {
    "default": env.dj_db_url(
        "DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env.int("DATABASE_CONN_MAX_AGE", default=0),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded demo database cannot enforce one membership per (user, trial, all sites,
    # role); PostgreSQL, which trials run on, does.
    SILENCED_SYSTEM_CHECKS = ["models.W047"]

# Authentication: argon2 first, strong passwords, lockout after repeated failures (django-axes).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, whose user of a session carries what the two-factor rule needs,
    # read with the user's row (one query on every page instead of two).
    "imrtrial.twofactor.SessionUserBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("PASSWORD_MIN_LENGTH", default=12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("LOGIN_LOCKOUT_HOURS", default=0.5)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
LOGIN_URL = "login"
# Two-factor sign-in (TOTP): unblinded roles, trial administrators and Django administrators must
# use it (the rule is imrtrial.twofactor.requires_two_factor). Off by default under DEBUG; `make
# run` turns it on, as in production. Whoever enrolled a device is asked for a code either way.
TWO_FACTOR_REQUIRED = env.bool("TWO_FACTOR_REQUIRED", default=not DEBUG)
OTP_TOTP_ISSUER = "imrtrial"
# django-otp's back-off after wrong codes: 1, 2, 4, 8... seconds times this factor.
OTP_TOTP_THROTTLE_FACTOR = 1
# The admin never shows a device's secret or its QR code.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Idle timeout: the session expires after this many idle seconds; every request renews it, with
# a write at most once a minute (imrtrial.middleware.IdleTimeoutMiddleware), not on every page.
# Django's database sessions, the row read by SQL written once per process (imrtrial/sessions.py).
SESSION_ENGINE = "imrtrial.sessions"
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_SECONDS", default=30 * 60)
SESSION_SAVE_EVERY_REQUEST = False
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True

# Security headers. With DEBUG off the site is assumed to sit behind HTTPS.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Everything is served from this site: no CDN, no inline script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# Request limits, stated rather than left to Django's defaults so they are reviewed: a form
# body over 2.5 MB or with more than 1,000 fields is refused with a 400 before any view runs
# (CRF pages post a few kilobytes). Uploads (the allocation list) are kept in memory up to
# 2.5 MB and streamed to a temporary file beyond; the upload form refuses anything over 2 MB
# with a message. A proxy in front of the site should cap bodies too (e.g. 5 MB).
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_PERMISSIONS = 0o600  # a list streamed to disk is readable by the site alone

# English is the source language; its dates keep the British formats (imrtrial/formats/en).
LANGUAGE_CODE = "en"
TIME_ZONE = env.str("TIME_ZONE", default="Europe/Copenhagen")
USE_I18N = True
LANGUAGES = [("en", "English"), ("da", "Dansk"), ("nl", "Nederlands")]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["imrtrial.formats"]
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# E-mail: console unless EMAIL_URL names an SMTP server (smtp://user:pass@host:587/?tls=True).
_email = env.dj_email_url("EMAIL_URL", default="console://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
EMAIL_PORT = _email["EMAIL_PORT"] or 25
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
EMAIL_USE_TLS = _email["EMAIL_USE_TLS"]
EMAIL_USE_SSL = _email["EMAIL_USE_SSL"]
EMAIL_TIMEOUT = _email["EMAIL_TIMEOUT"] or 30
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="imrtrial@localhost")
# The site's address, for links in messages sent without a request (the participants' links).
SITE_URL = env.str("SITE_URL", default="http://localhost:8000").rstrip("/")

# Text messages to participants (selfreport/sms.py): the sender class, and for HttpSender the
# provider's API. SMS_FROM is what the phone shows as the sender: never the trial's name.
SMS_BACKEND = env.str("SMS_BACKEND", default="selfreport.sms.ConsoleSender")
SMS_API_URL = env.str("SMS_API_URL", default="")
SMS_API_TOKEN = env.str("SMS_API_TOKEN", default="")
SMS_FROM = env.str("SMS_FROM", default="")
# The participants' messages (selfreport/messaging.py): reminders so many days after the link
# went, and the local hours ("21-8": 21:00 to 08:00) in which no message is sent.
SELF_REPORT_REMINDER_DAYS = env.list("SELF_REPORT_REMINDER_DAYS", subcast=int, default=[3, 7])
SELF_REPORT_QUIET_HOURS = env.str("SELF_REPORT_QUIET_HOURS", default="21-8")
if not re.fullmatch(r"([01]?\d|2[0-3])-([01]?\d|2[0-3])", SELF_REPORT_QUIET_HOURS):
    raise RuntimeError('SELF_REPORT_QUIET_HOURS must be two hours, e.g. "21-8" (21:00 to 08:00).')

# Celery: without a broker, tasks run eagerly in the web process (the make-run default).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    "daily-reminders": {
        "task": "assessments.tasks.daily_reminders",
        "schedule": crontab(hour=env.int("REMINDER_HOUR", default=6), minute=0),
    },
    "daily-attendance-reminders": {
        "task": "fidelity.tasks.daily_attendance_reminders",
        "schedule": crontab(hour=env.int("REMINDER_HOUR", default=6), minute=5),
    },
    # Every data quality rule over every trial, opening and closing system data queries.
    "nightly-quality-rules": {
        "task": "quality.tasks.nightly_rules",
        "schedule": crontab(hour=env.int("QUALITY_RULES_HOUR", default=2), minute=0),
    },
    # The notices of new allocations (randomization.models.AllocationNotice), within a minute.
    "send-allocation-notices": {
        "task": "randomization.tasks.send_allocation_notices",
        "schedule": 60.0,
    },
    # The participants' links and reminders (selfreport.messaging), within a minute.
    "send-participant-messages": {
        "task": "selfreport.tasks.send_participant_messages",
        "schedule": 60.0,
    },
    # The reminders that fell due, queued and sent once an hour.
    "queue-participant-reminders": {
        "task": "selfreport.tasks.queue_participant_reminders",
        "schedule": crontab(minute=15),
    },
    # Retries what the mail server refused earlier in the day.
    "send-pending-reminders": {
        "task": "assessments.tasks.send_pending_reminders",
        "schedule": crontab(minute=30),
    },
}

# The cache: Redis in production (docker-compose.yml), where the web API counts each token's
# requests for its rate limit, so all web processes share one count; memory for `make run`.
CACHES = {"default": env.dj_cache_url("CACHE_URL", default="locmem://")}

# The web API (api/): personal tokens only, asked through the gate on every request
# (api.authentication); one rate per token, counted in the cache above.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["api.authentication.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": env.str("API_TOKEN_RATE", default="600/min")},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # `format` is the records endpoint's own parameter (json or csv), not DRF's renderer switch.
    "URL_FORMAT_OVERRIDE": None,
    "EXCEPTION_HANDLER": "api.views.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "imrtrial web API",
    "DESCRIPTION": (
        "The blinded trial data, its dictionary, record status, queries, exports and "
        "randomization, for personal API tokens (Authorization: Bearer <token>). Every endpoint "
        "asks the same gate as its page; one a token may not use answers 404."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Instrument definitions (YAML, one file per instrument); trial files name them by code.
INSTRUMENTS_DIR = BASE_DIR / "assessments" / "instruments"

# Finished exports (datasets, codebooks, the allocation key) wait here for download. Not served
# as static or media: only the export's own download view, behind the gate, reads this folder.
EXPORT_DIR = env.path("EXPORT_DIR", default=BASE_DIR / "var" / "exports")

# The secret behind every allocation sequence. It is never stored in the database: only the
# trial statistician and the server that randomizes know it.
RANDOMIZATION_SECRET = env.str("RANDOMIZATION_SECRET", default="" if not DEBUG else "demo-secret")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.log_level("LOG_LEVEL", default="INFO")},
    # A participant's link token is in the path Django logs with every 4xx and 5xx answer.
    "filters": {"link_tokens": {"()": "selfreport.logs.HideLinkTokens"}},
    "loggers": {"django.request": {"filters": ["link_tokens"]}},
}

# Reasons are kept whole: a reconciliation names every item it decided and why, which can be
# longer than simple-history's default 100 characters (a CSQ-8 with eight differences was
# refused with a database error).
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
