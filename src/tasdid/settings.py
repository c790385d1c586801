"""Django settings for every party of Tasdid; configuration comes from environment variables only.

Each party (biller, gateway, bank) is served by its own WSGI application (see ``tasdid.wsgi``); they share
this settings module but not their tables, URLs, sessions or admin sites.
"""

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"Set the environment variable {name}.")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")


def env_number(name: str, default: str, kind: type = int, minimum: float = 0):
    raw = env(name, default)
    try:
        value = kind(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {raw!r}.")
    return value


BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(env("TASDID_VAR_DIR", str(Path.cwd() / "var")))

# Sandbox mode: the demo's sandbox phone, mailbox and test cards. Never on in production.
SANDBOX = env_bool("TASDID_SANDBOX", False)
DEBUG = env_bool("TASDID_DEBUG", False)

# The sandbox's keys are public (they are in this file): outside sandbox mode none is ever used, whatever
# TASDID_DEBUG says, else anyone could sign a callback that marks an invoice paid.
SANDBOX_SECRETS = {
    "TASDID_SECRET_KEY": "tasdid-insecure-development-key-change-me-0123456789",
    "TASDID_BILLER_STORE_KEY": "TASDID-DEMO-STORE-KEY",
    "TASDID_BILLER_GATEWAY_API_PASSWORD": "TASDID-DEMO-API-PASSWORD",
}


def env_secret(name: str) -> str:
    """A secret from the environment; the public sandbox value only in sandbox mode."""
    value = os.environ.get(name, "")
    if SANDBOX:
        return value or SANDBOX_SECRETS[name]
    if not value:
        raise ImproperlyConfigured(
            f"{name} n'est pas définie : hors du mode bac à sable (TASDID_SANDBOX=1), chaque clé secrète doit "
            "venir de l'environnement, il n'y a pas de valeur par défaut.")
    if value == SANDBOX_SECRETS[name]:
        raise ImproperlyConfigured(
            f"{name} a la valeur publique du bac à sable : hors de ce mode, choisissez une clé secrète à vous.")
    return value


SECRET_KEY = env_secret("TASDID_SECRET_KEY")

# Separate keys per purpose, so that one leaking does not forge the others. Each defaults to a value
# derived from SECRET_KEY (see tasdid.core.keys) unless set explicitly.
TASDID_KEYS = {  # tasdid.core.keys.OWNERS: which party holds each
    "codes": os.environ.get("TASDID_CODES_KEY", ""),  # biller: fidelio and payment code digests
    "receipts": os.environ.get("TASDID_RECEIPTS_KEY", ""),  # biller: unguessable receipt links
    "receipt-checks": os.environ.get("TASDID_RECEIPT_CHECKS_KEY", ""),  # biller: verification codes on receipts
    "gateway-cards": os.environ.get("TASDID_GATEWAY_CARDS_KEY", ""),  # gateway: keyed card fingerprints
    "vault": os.environ.get("TASDID_VAULT_KEY", ""),  # gateway: card data in transit through 3-D Secure
    # gateway: the merchants' store keys at rest; several, comma-separated, the first sealing (gateway.store_keys)
    "store-keys": os.environ.get("TASDID_GATEWAY_STORE_KEY_KEYS", ""),
    "cards": os.environ.get("TASDID_CARDS_KEY", ""),  # bank: keyed card fingerprints (PAN, CVV)
    "otp": os.environ.get("TASDID_OTP_KEY", ""),  # bank: the ACS's SMS code digests
    "cavv": os.environ.get("TASDID_CAVV_KEY", ""),  # bank: its authentication values (CAVV), the bank's alone
    "3ds-gateway-switch": os.environ.get("TASDID_3DS_GATEWAY_SWITCH_KEY", ""),  # 3DS Server <-> directory
    "3ds-switch-bank": os.environ.get("TASDID_3DS_SWITCH_BANK_KEY", ""),  # the same messages: directory <-> ACS
}

# Where each party answers. The defaults are the demo's loopback ports.
BILLER_URL = env("TASDID_BILLER_URL", "http://127.0.0.1:8000").rstrip("/")
GATEWAY_URL = env("TASDID_GATEWAY_URL", "http://127.0.0.1:8001").rstrip("/")
BANK_URL = env("TASDID_BANK_URL", "http://127.0.0.1:8002").rstrip("/")
SWITCH_URL = env("TASDID_SWITCH_URL", "http://127.0.0.1:8003").rstrip("/")  # its admin and 3-D Secure directory

# The switch (centre monétique): where it takes ISO 8583 from acquirers, where the issuer host answers (the
# default of the BIN routes whose host is left empty), and its timers in seconds (docs/iso8583.md, "Le switch").
SWITCH_HOST = env("TASDID_SWITCH_HOST", "127.0.0.1")
SWITCH_PORT = env_number("TASDID_SWITCH_PORT", "8583", minimum=1)
ISSUER_HOST = env("TASDID_ISSUER_HOST", "127.0.0.1")
ISSUER_PORT = env_number("TASDID_ISSUER_PORT", "8584", minimum=1)
SWITCH_ISSUER_TIMEOUT = env_number("TASDID_SWITCH_ISSUER_TIMEOUT", "10", float, minimum=0.1)
SWITCH_ECHO_SECONDS = env_number("TASDID_SWITCH_ECHO_SECONDS", "30", float, minimum=0.1)
SWITCH_IDLE_SECONDS = env_number("TASDID_SWITCH_IDLE_SECONDS", "300", float, minimum=0.1)
SWITCH_DUPLICATE_SECONDS = env_number("TASDID_SWITCH_DUPLICATE_SECONDS", "300", float)
SWITCH_ROUTES_SECONDS = env_number("TASDID_SWITCH_ROUTES_SECONDS", "30", float, minimum=0.1)

# The biller as a merchant of the gateway (the gateway registers it with `tasdid merchant add`).
BILLER_CLIENT_ID = env("TASDID_BILLER_CLIENT_ID", "600000001")
BILLER_STORE_KEY = env_secret("TASDID_BILLER_STORE_KEY")
BILLER_NAME = env("TASDID_BILLER_NAME", "Tasdid Télécom")
# The biller's login to the gateway's merchant XML API (refunds: tasdid.billing.gateway_api), the Name and Password
# of its CC5Request; the gateway keeps the user (its password hashed), the demo creates it (tasdid.demo).
BILLER_GATEWAY_API_USER = env("TASDID_BILLER_GATEWAY_API_USER", "tasdid-biller")
BILLER_GATEWAY_API_PASSWORD = env_secret("TASDID_BILLER_GATEWAY_API_PASSWORD")

# The gateway's acquirer: its ISO 8583 client of the centre monétique (the card rails). Any class of the
# core.acquiring.Acquirer protocol may stand in (tests put fakes of theirs here).
GATEWAY_ACQUIRER = env("TASDID_GATEWAY_ACQUIRER", "tasdid.gateway.rails.SwitchAcquirer")
# The gateway's ISO 8583 client of the switch (tasdid.gateway.rails.SwitchAcquirer, docs/iso8583.md "The gateway
# client"): the switch's address (the same variables as `tasdid switch`), the answer's timeout and the idle echo.
RAILS_TIMEOUT = env_number("TASDID_RAILS_TIMEOUT", "10", float, minimum=0.1)
RAILS_ECHO_SECONDS = env_number("TASDID_RAILS_ECHO_SECONDS", "30", float, minimum=0.1)
# The 3-D Secure directory the gateway sends AReq messages to: the switch's.
GATEWAY_3DS_DIRECTORY_URL = env("TASDID_3DS_DIRECTORY_URL", SWITCH_URL + "/3ds/areq").rstrip("/")
# The ACS the switch's directory sends a BIN route's AReq to when the route names none: the sandbox bank's.
SWITCH_ACS_URL = env("TASDID_3DS_ACS_URL", BANK_URL + "/acs/areq").rstrip("/")
# Card brands by BIN prefix ("4") or range ("2221-2720"), which the hosted page checks the card type against:
# a JSON object {"VISA": ["4"], ...} in TASDID_BIN_TABLE, or the default table of tasdid.core.cards.
def _bin_table() -> dict[str, list[str]]:
    from tasdid.core.cards import DEFAULT_BIN_TABLE

    raw = os.environ.get("TASDID_BIN_TABLE", "")
    if not raw:
        return {brand: list(specs) for brand, specs in DEFAULT_BIN_TABLE.items()}
    try:
        table = json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"TASDID_BIN_TABLE is not JSON: {exc}") from None
    if not isinstance(table, dict) or not all(
        isinstance(specs, list) and all(isinstance(s, str) and s for s in specs) for specs in table.values()
    ):
        raise ImproperlyConfigured('TASDID_BIN_TABLE must be a JSON object {"BRAND": ["prefix", "low-high"], ...}.')
    return table


GATEWAY_BIN_TABLE = _bin_table()
# Time allowed for a server-to-server call between parties, in seconds.
PARTY_HTTP_TIMEOUT = env_number("TASDID_PARTY_HTTP_TIMEOUT", "10", float)

# The biller's reconciliation with the gateway (tasdid.billing.services.reconciliation): how often the worker runs
# it, how many days back unpaid orders are asked about, and who is told of a discrepancy by email ("": nobody).
RECONCILE_SECONDS = env_number("TASDID_RECONCILE_SECONDS", "900", minimum=10)
RECONCILE_DAYS = env_number("TASDID_RECONCILE_DAYS", "7", minimum=1)
RECONCILE_ALERT_EMAIL = env("TASDID_RECONCILE_ALERT_EMAIL", "controle@tasdid.example.ma" if SANDBOX else "")

# Reverse proxies in front of the web servers whose X-Forwarded-For hop to trust for the client's address.
TRUSTED_PROXY_COUNT = env_number("TASDID_TRUSTED_PROXIES", "0")

ALLOWED_HOSTS = [h.strip() for h in env("TASDID_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tasks",
    "django_tasks_db",
    "tasdid.core",
    "tasdid.messaging",
    "tasdid.billing",
    "tasdid.portal",
    "tasdid.gateway",
    "tasdid.bank",
    "tasdid.switch",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outside the others, so that every response carries the policy, error pages of a failing middleware too.
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tasdid.core.http.PartyMiddleware",
    "tasdid.core.http.PartySessionMiddleware",  # Django's, with each session bound to its party
    "tasdid.core.i18n.LanguageMiddleware",  # ?lang= and the party's cookie, never Accept-Language
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The end-to-end benchmark's probes (tasdid.core.bench), off in production: a trivial page at the end of the
# middleware stack for loopback clients, and SQL statements counted per process into files of a directory.
BENCH_PING = env_bool("TASDID_BENCH_PING", False)
if BENCH_PING:
    MIDDLEWARE.append("tasdid.core.bench.PingMiddleware")
SQL_COUNT_DIR = env("TASDID_SQL_COUNT_DIR", "")

# Which URLs each party serves; the WSGI application of a party sets environ["tasdid.party"].
PARTY_URLCONFS = {
    "biller": "tasdid.portal.urls",
    "gateway": "tasdid.gateway.urls",
    "bank": "tasdid.bank.urls",
    "switch": "tasdid.switch.urls",
}
ROOT_URLCONF = "tasdid.portal.urls"
# The template each party's pages extend (its header and footer); the error pages of tasdid.core use it too.
PARTY_BASE_TEMPLATES = {
    "biller": "portal/base.html",
    "gateway": "gateway/base.html",
    "bank": "bank/layout.html",
}

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
                "tasdid.core.http.party_context",
            ],
        },
    },
]

WSGI_APPLICATION = "tasdid.wsgi.biller"

DATABASE_URL = env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'tasdid.sqlite3'}")
# A process keeps its database connection (one per thread) between requests, and the worker between its polls,
# for this many seconds; checked before reuse by a request that follows an error (a restarted database server).
# 0: a new connection for each request.
DB_CONN_MAX_AGE = env_number("TASDID_DB_CONN_MAX_AGE", "600")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=DB_CONN_MAX_AGE, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Several processes (web servers, worker, SMTP sink) share the file: WAL lets readers run beside a writer,
    # IMMEDIATE takes the write lock at BEGIN so that select_for_update-style sections serialize cleanly.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("ar", "العربية"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TASDID_TIME_ZONE", "Africa/Casablanca")
# Digits of amounts and dates on Arabic pages (tasdid.core.l10n): "western" 0-9 (as Moroccan bills print them) or
# "arabic" (Eastern Arabic-Indic ٠-٩).
ARABIC_DIGITS = env("TASDID_ARABIC_DIGITS", "western").strip().lower()
if ARABIC_DIGITS not in ("western", "arabic"):
    raise ImproperlyConfigured(f'TASDID_ARABIC_DIGITS must be "western" or "arabic", not {ARABIC_DIGITS!r}.')
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve app static files without a collectstatic step
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Sessions: each party has its own cookie name (see PartyMiddleware); the CSRF token lives in the session. In the
# database, through tasdid.core.sessions (Django's engine with fewer statements).
SESSION_ENGINE = "tasdid.core.sessions"
SESSION_COOKIE_AGE = env_number("TASDID_SESSION_SECONDS", "1800")
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_SECURE = env_bool("TASDID_SECURE_COOKIES", True)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_USE_SESSIONS = True
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_FAILURE_VIEW = "tasdid.core.http.csrf_failure"
# Error reports (debug page, emails to ADMINS) never show a card number, a CVV or a code (PCI DSS 3.3, 3.5).
DEFAULT_EXCEPTION_REPORTER_FILTER = "tasdid.core.error_reports.CardDataReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "tasdid.core.error_reports.CardDataExceptionReporter"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("TASDID_HTTPS", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = 31536000

# Strict Content-Security-Policy: nothing but our own static files; no inline script or style.
# Pages that post a form to another party add that party's origin to form-action (tasdid.core.http).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
    }
}

TASKS = {
    "default": {
        "BACKEND": env("TASDID_TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
    }
}
# Run by every task worker with its recovery pass (tasdid.core.worker): each finds what a crash left behind,
# whether or not a task still watches it (a watch task failed for good must not leave a hold open forever).
TASK_WORKER_SWEEPS = [
    "tasdid.messaging.services.outbox_sweep",
    "tasdid.gateway.flow.sweep",
    "tasdid.gateway.rails.sweep_reversals",
    "tasdid.billing.services.payments.payment_orders_expire",
]

# Email: real SMTP (tasdid.messaging.mail). The demo starts a local SMTP sink on port 8025.
EMAIL_BACKEND = "tasdid.messaging.mail.SmtpBackend"
EMAIL_HOST = env("TASDID_EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_number("TASDID_EMAIL_PORT", "8025")
EMAIL_HOST_USER = env("TASDID_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = env("TASDID_EMAIL_PASSWORD", "")
# "none" (a local relay), "starttls" (usually port 587) or "tls", implicit (usually port 465); TASDID_EMAIL_TLS=1,
# the older switch, means "starttls". The server's certificate is verified: against the system's CAs, or against
# the CA file alone when one is given (a private CA).
EMAIL_SECURITY = env("TASDID_EMAIL_SECURITY", "starttls" if env_bool("TASDID_EMAIL_TLS", False) else "none").lower()
if EMAIL_SECURITY not in {"none", "starttls", "tls"}:
    raise ImproperlyConfigured(f"TASDID_EMAIL_SECURITY must be none, starttls or tls, not {EMAIL_SECURITY!r}.")
EMAIL_USE_TLS = EMAIL_SECURITY == "starttls"
EMAIL_USE_SSL = EMAIL_SECURITY == "tls"
EMAIL_SSL_CAFILE = env("TASDID_EMAIL_CA_FILE", "")
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env("TASDID_EMAIL_FROM", "Tasdid <paiement@tasdid.example.ma>")
# Where a customer's reply to a receipt goes (people do answer them); "" sends no Reply-To.
EMAIL_REPLY_TO = env("TASDID_EMAIL_REPLY_TO", "Tasdid Service client <service-client@tasdid.example.ma>")
# The receipt's PDF attached to the receipt email (the email links to the receipt either way). Off for mail systems
# that refuse attachments, or where the PDF's CPU per payment matters more than the attachment.
RECEIPT_EMAIL_PDF = env_bool("TASDID_RECEIPT_EMAIL_PDF", True)

LOG_DIR = Path(env("TASDID_LOG_DIR", str(VAR_DIR / "log")))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    # Every handler masks card numbers (an exception's text may quote one; PCI DSS 3.3).
    "filters": {"card_data": {"()": "tasdid.core.error_reports.CardDataLogFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["card_data"]},
    },
    "root": {"handlers": ["console"], "level": env("TASDID_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.server": {"level": "WARNING"},
    },
}

# SMS: the channel that carries outbound SMS ("sandbox": the sandbox phones, in sandbox mode only; none by
# default outside it), and the services behind the short numbers that receive SMS (number -> handler dotted path).
SMS_CHANNEL = env("TASDID_SMS_CHANNEL", "sandbox" if SANDBOX else "")
if SMS_CHANNEL not in {"", "sandbox", "smpp"}:
    raise ImproperlyConfigured(f"TASDID_SMS_CHANNEL must be sandbox or smpp, not {SMS_CHANNEL!r}.")
# The SMS centre, when SMS_CHANNEL is "smpp": ``tasdid smpp`` binds there as a transceiver (SMPP 3.4), submits
# the outbox's SMS, follows their delivery receipts and hands inbound SMS to SMS_SERVICES.
SMPP_HOST = env("TASDID_SMPP_HOST", "127.0.0.1")
SMPP_PORT = env_number("TASDID_SMPP_PORT", "2775", minimum=1)
SMPP_SYSTEM_ID = env("TASDID_SMPP_SYSTEM_ID", "")
SMPP_PASSWORD = env("TASDID_SMPP_PASSWORD", "")
SMPP_SYSTEM_TYPE = env("TASDID_SMPP_SYSTEM_TYPE", "")
SMPP_SOURCE_ADDR = env("TASDID_SMPP_SOURCE_ADDR", "")  # "" = each SMS's own sender (the service's number)
SMPP_WINDOW = env_number("TASDID_SMPP_WINDOW", "10", minimum=1)  # submit_sm awaiting their answer at once
SMS_SERVICES = {"1111": "tasdid.billing.sms.fidelio_service"}

# The biller's codes and identification limits (tasdid.billing.services.fidelio / .identification).
FIDELIO_CODE_SECONDS = env_number("TASDID_FIDELIO_CODE_SECONDS", "900")  # a code fidelio is valid 15 minutes
FIDELIO_REQUEST_LIMIT = env_number("TASDID_FIDELIO_REQUEST_LIMIT", "3")  # codes a line may ask for per window
FIDELIO_REQUEST_WINDOW_SECONDS = env_number("TASDID_FIDELIO_REQUEST_WINDOW_SECONDS", "900")
LINE_LOCK_AFTER_FAILURES = env_number("TASDID_LINE_LOCK_AFTER_FAILURES", "5")  # wrong codes in a row lock a line
LINE_LOCK_SECONDS = env_number("TASDID_LINE_LOCK_SECONDS", "1800")
IDENTIFICATION_IP_LIMIT = env_number("TASDID_IDENTIFICATION_IP_LIMIT", "20")  # failures per client address per window
IDENTIFICATION_IP_WINDOW_SECONDS = env_number("TASDID_IDENTIFICATION_IP_WINDOW_SECONDS", "900")
# The public receipt check (tasdid.billing.services.receipt_checks): wrong answers per client address per window.
RECEIPT_CHECK_IP_LIMIT = env_number("TASDID_RECEIPT_CHECK_IP_LIMIT", "10")
RECEIPT_CHECK_IP_WINDOW_SECONDS = env_number("TASDID_RECEIPT_CHECK_IP_WINDOW_SECONDS", "900")
