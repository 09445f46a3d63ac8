"""AlgoMirror settings: one module, every value from the environment (see .env.example).

Two modes. `ALGOMIRROR_MODE=embedded` (the default, what `make run` uses): SQLite in the
instance directory, secrets generated once into `<instance>/secrets.env`, an always-open
demo market calendar. `ALGOMIRROR_MODE=production`: SECRET_KEY and ENCRYPTION_KEY must be
set, HTTPS hardening is on, and `manage.py check --deploy` is clean.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from core.instance import SECRETS_FILE, ensure_secrets
from core.keys import BadKeyList, parse_fernet_keys, read_key_file
from openalgo_client.netpolicy import NetworkPolicy

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)  # real environment variables win


def _env_or(name: str, cast, default):
    """An empty value means "not set": a copied .env.example with `HTTPS=` keeps the mode's default."""
    return cast(name) if env.str(name, default="").strip() else default


# ---- Mode and secrets
MODE = env.str("ALGOMIRROR_MODE", default="embedded")
if MODE not in ("embedded", "production"):
    raise ImproperlyConfigured("ALGOMIRROR_MODE must be 'embedded' or 'production'")
PRODUCTION = MODE == "production"
INSTANCE_DIR = Path(env.str("INSTANCE_DIR", default=str(BASE_DIR / "var" / "instance")))

if PRODUCTION:
    missing = [
        k
        for k in ("SECRET_KEY", "ENCRYPTION_KEY")
        if not env.str(k, default="") and not (k == "ENCRYPTION_KEY" and env.str("ENCRYPTION_KEY_FILE", default=""))
    ]
    if missing:
        raise ImproperlyConfigured(f"Production needs {', '.join(missing)} in the environment; refusing to start.")
    _secrets: dict[str, str] = {}
else:
    _secrets = ensure_secrets(INSTANCE_DIR)

SECRET_KEY = env.str("SECRET_KEY", default="") or _secrets["SECRET_KEY"]
# Fernet keys, newest first, from ENCRYPTION_KEY (fixed for the life of the process) or from a
# key file (ENCRYPTION_KEY_FILE; the embedded default's secrets file) that every process reads
# again when a key fails or before it encrypts, so a rotation reaches a running stack. See
# docs/key-rotation.md. A malformed list stops start-up here, naming the entry, never the key.
ENCRYPTION_KEY_FILE: Path | None = None
if env.str("ENCRYPTION_KEY", default=""):
    if env.str("ENCRYPTION_KEY_FILE", default=""):
        raise ImproperlyConfigured("Set ENCRYPTION_KEY or ENCRYPTION_KEY_FILE, not both; refusing to start.")
    _key_source, _raw_keys = "ENCRYPTION_KEY", env.str("ENCRYPTION_KEY")
else:
    ENCRYPTION_KEY_FILE = Path(env.str("ENCRYPTION_KEY_FILE", default="") or INSTANCE_DIR / SECRETS_FILE)
    _key_source = f"ENCRYPTION_KEY in {ENCRYPTION_KEY_FILE}"
    try:
        _raw_keys = read_key_file(ENCRYPTION_KEY_FILE)
    except OSError as e:
        raise ImproperlyConfigured(
            f"Cannot read the key file {ENCRYPTION_KEY_FILE} ({e.strerror}); refusing to start."
        ) from None
try:
    ENCRYPTION_KEYS = parse_fernet_keys(_raw_keys, source=_key_source)
except BadKeyList as e:
    raise ImproperlyConfigured(f"{e} Refusing to start.") from None

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# ---- Applications
INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "channels",
    "accounts",
    "trading",
    "strategies",
    "risk",
    "marketdata",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "algomirror.middleware.SessionLifetimeMiddleware",
    "algomirror.middleware.SensitivePostMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "algomirror.urls"
WSGI_APPLICATION = "algomirror.wsgi.application"
ASGI_APPLICATION = "algomirror.asgi.application"

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
                "django.template.context_processors.csp",
                "accounts.context_processors.links",
            ],
            # Money and time formats for every template without a {% load %} (core.money, core.timefmt).
            "builtins": ["accounts.templatetags.money"],
        },
    },
]

# ---- Database
_default_db = f"sqlite:///{INSTANCE_DIR / 'algomirror.sqlite3'}"
DATABASES = {"default": env.db("DATABASE_URL", default=_default_db)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers work beside the one writer; IMMEDIATE takes the write lock at BEGIN,
    # so SELECT-then-UPDATE sequences cannot interleave (SQLite has no row locks).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests use a file, not shared-cache memory: concurrency tests and worker subprocesses need
    # real locking and a database other processes can open.
    DATABASES["default"]["TEST"] = {"NAME": str(INSTANCE_DIR / "test.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---- Redis: cache (login throttling), Celery broker, Channels layer
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="am"),
    }
}
# Pub/sub layer: one PUBLISH per group message (live prices need thousands a second); delivery is
# at most once, which suits live views that re-render from the database or the price store.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": env.str("CHANNELS_PREFIX", default="am")},
    }
}

# ---- Celery (one beat process; schedules are defined in algomirror/celery.py and synced to the DB)
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = False  # exactly-once comes from the database, never from redelivery
# Keep DB connections across tasks (Celery closes them around every task by default); health
# and age are checked before each task instead (algomirror/celery.py).
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="algomirror")

# ---- Auth (django-allauth)
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env.list(
    "PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.ScryptPasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ],
)
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_ADAPTER = "accounts.adapters.FirstUserAdapter"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = None  # the login form offers "remember me"
# Failed passwords: LOGIN_FAILURE_LIMIT failures lock the account (username or email alike) and the
# client address for LOGIN_LOCK_MINUTES from the last failure (accounts/lockout.py, in the adapter).
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_LOCK_MINUTES = env.int("LOGIN_LOCK_MINUTES", default=15)
# allauth's own limit now guards only the second factor (wrong TOTP codes per user and address).
ACCOUNT_RATE_LIMITS = {"login_failed": "5/15m/ip,5/15m/key"}
# The client address behind reverse proxies: X-Forwarded-For counted this many entries from the
# right (each trusted proxy appends one; the left part is whatever the client sent). 0: the header
# is ignored and the connecting address is the client. Or a header a trusted proxy overwrites.
ALLAUTH_TRUSTED_PROXY_COUNT = _env_or("TRUSTED_PROXY_COUNT", env.int, 0)
ALLAUTH_TRUSTED_CLIENT_IP_HEADER = env.str("TRUSTED_CLIENT_IP_HEADER", default="") or None
# Sensitive actions (host/key changes, …; accounts.security.require_recent_auth) need the password or
# a TOTP code given within this many seconds; allauth's reauthentication asks for it.
ACCOUNT_REAUTHENTICATION_TIMEOUT = env.int("REAUTHENTICATION_SECONDS", default=300)
# Adding or changing an email address or the password asks for it too: with the session alone, an
# address of someone else's and a reset mail to it would hand over the password (and so every
# re-authentication above). The password change checks the old password through the lockout.
ACCOUNT_REAUTHENTICATION_REQUIRED = True
ACCOUNT_FORMS = {"change_password": "accounts.forms.LockedChangePasswordForm"}  # nosec B105 # a form path, no secret
ACCOUNT_EMAIL_SUBJECT_PREFIX = "AlgoMirror: "
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "AlgoMirror"
# allauth refuses two-factor while an address is unverified, against a stranger signing up with
# someone else's address; here only the first admin signs up (the admin creates everyone else),
# and the embedded default may have no way to deliver a verification mail.
MFA_ALLOW_UNVERIFIED_EMAIL = True

# ---- Mail (password reset, e-mail verification)
# EMAIL_URL (smtp://, smtp+tls://, smtp+ssl://) or EMAIL_HOST/EMAIL_PORT/… send through SMTP.
# Without either, mail is kept in a local mailbox (files under INSTANCE_DIR/mailbox) that
# administrators read at /mailbox/: password resets work with no mail server at all.
if env.str("EMAIL_URL", default=""):
    # e.g. smtp+tls://user:password@smtp.example.com:587 (URL-encode special characters)
    globals().update({k: v for k, v in env.email_url("EMAIL_URL").items() if v not in (None, "")})
elif env.str("EMAIL_HOST", default=""):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = env.str("EMAIL_HOST")
    EMAIL_PORT = env.int("EMAIL_PORT", default=587)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
    EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
    EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
    EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
else:
    EMAIL_BACKEND = "accounts.mailbox.MailboxBackend"
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default="") or str(INSTANCE_DIR / "mailbox")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)  # a dead mail server must not hold a request
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="AlgoMirror <algomirror@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# ---- Sessions: signed out after SESSION_IDLE_MINUTES without activity and SESSION_MAX_HOURS after
# login (algomirror.middleware.SessionLifetimeMiddleware); the cookie never outlives the latter.
SESSION_IDLE_MINUTES = env.int("SESSION_IDLE_MINUTES", default=30)
SESSION_MAX_HOURS = env.int("SESSION_MAX_HOURS", default=12)
SESSION_COOKIE_AGE = SESSION_MAX_HOURS * 3600

# ---- Security headers and cookies
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    # Nonce-based: an inline script runs only with this response's nonce (base templates use it on
    # their scripts, so every page's header carries one); our own script files stay allowed.
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
_https = _env_or("HTTPS", env.bool, PRODUCTION)
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
if _https:
    # __Host-: the browser accepts the cookie only over HTTPS, for this exact host and path /, so
    # neither a sibling subdomain nor a plain-HTTP page can plant or overwrite it.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
SECURE_SSL_REDIRECT = _env_or("SECURE_SSL_REDIRECT", env.bool, _https)
SECURE_HSTS_SECONDS = _env_or("SECURE_HSTS_SECONDS", env.int, 31536000 if _https else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_or("SECURE_HSTS_INCLUDE_SUBDOMAINS", env.bool, _https)
SECURE_HSTS_PRELOAD = _env_or("SECURE_HSTS_PRELOAD", env.bool, _https)
if env.bool("BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# ---- REST API
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}
SPECTACULAR_SETTINGS = {"TITLE": "AlgoMirror API", "VERSION": "0.1.0"}

# ---- Internationalisation: stored in UTC, shown in IST
LANGUAGE_CODE = "en-in"
TIME_ZONE = "Asia/Kolkata"
USE_I18N = True
USE_TZ = True

# ---- Static files (Tailwind is compiled into static/css/app.css; no CDN)
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "var" / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root

# ---- AlgoMirror
OPENALGO_TIMEOUT = env.float("OPENALGO_TIMEOUT", default=10.0)
# The networks an OpenAlgo server may be on (every request and WebSocket is checked at connect
# time, on the address connected to): `public` (globally routable addresses), `loopback`,
# `private` (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) or CIDR networks, comma-separated.
# The embedded default allows loopback too (OpenAlgo and brokersim on this machine); production
# allows only public addresses unless configured. Administrators add networks on the admin page
# (Accounts → Allowed networks). Link-local and cloud-metadata addresses are never allowed.
OPENALGO_ALLOWED_NETWORKS = env.list(
    "OPENALGO_ALLOWED_NETWORKS", default=["public"] if PRODUCTION else ["public", "loopback"]
)
try:
    NetworkPolicy.parse(OPENALGO_ALLOWED_NETWORKS)
except ValueError as _e:
    raise ImproperlyConfigured(f"OPENALGO_ALLOWED_NETWORKS: {_e}") from None
# The order form asks "place anyway?" before a limit or trigger price more than this many percent
# from the last traded price (a typo such as ₹99,999 for ₹812).
ORDER_PRICE_BAND_PCT = env.float("ORDER_PRICE_BAND_PCT", default=20.0)
# "nse" follows the NSE calendar; "always_open" keeps the demo market live at any hour.
MARKET_CALENDAR = env.str("MARKET_CALENDAR", default="nse" if PRODUCTION else "always_open")
HEALTH_FAILURES_FOR_DOWN = env.int("HEALTH_FAILURES_FOR_DOWN", default=3)
HEALTH_INTERVAL_OPEN = env.int("HEALTH_INTERVAL_OPEN", default=30)
HEALTH_INTERVAL_CLOSED = env.int("HEALTH_INTERVAL_CLOSED", default=300)
BROKERSIM_ACCOUNTS_FILE = Path(
    env.str("BROKERSIM_ACCOUNTS_FILE", default=str(BASE_DIR / "var" / "brokersim" / "accounts.json"))
)
FLOWER_URL = env.str("FLOWER_URL", default="")

# ---- Logging: secrets never reach logs (the OpenAlgo client never logs request bodies)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}

# ---- Market data
# A price is usable only while younger than this (seconds); older ones show as stale.
PRICE_MAX_AGE = env.float("PRICE_MAX_AGE", default=10.0)
# No tick for this long while subscribed and the market is open counts as a dropped feed.
FEED_STALL_SECONDS = env.float("FEED_STALL_SECONDS", default=10.0)
# Whose accounts may carry the one platform feed (it streams every user's instruments, with
# that account's key): "admins" (default) — only administrators' accounts; "all" — any user's
# market-data account, an explicit choice to share one user's broker account with everyone.
MARKETDATA_FEED_ACCOUNTS = env.str("MARKETDATA_FEED_ACCOUNTS", default="admins")
if MARKETDATA_FEED_ACCOUNTS not in ("admins", "all"):
    raise ImproperlyConfigured("MARKETDATA_FEED_ACCOUNTS must be 'admins' or 'all'")
# Browser updates per instrument are coalesced to about one per this many milliseconds (always the
# newest price; a tick within 3/4 of it is sent at once, so 5 ticks/s pass without added delay).
FEED_MIN_INTERVAL_MS = env.int("FEED_MIN_INTERVAL_MS", default=250)
# Option-chain page sessions expire after this long without a heartbeat.
CHAIN_SESSION_TTL = env.int("CHAIN_SESSION_TTL", default=300)

# ---- Orders
# After the client timeout plus this many seconds, a request whose outcome was unknown can no
# longer be in flight: reconciliation may then conclude from the broker's orderbook.
ORDER_UNKNOWN_GRACE = env.float("ORDER_UNKNOWN_GRACE", default=5.0)
# An exit whose two views of the position (the broker's positionbook, our own fills) disagree is
# held this long after it was created, for a lagging book to catch up; then the smaller one wins.
EXIT_BOOKS_AGREE_SECONDS = env.float("EXIT_BOOKS_AGREE_SECONDS", default=6.0)
# A worker holds a claimed order at most this long before it must have sent it (exit lock, the
# gate's reads and the throttle all fit inside); the sweeper gives back claims older than this
# plus the margin (clock skew between hosts): by then their worker can no longer send them.
ORDER_CLAIM_SECONDS = env.float("ORDER_CLAIM_SECONDS", default=25.0)
ORDER_CLAIM_MARGIN = env.float("ORDER_CLAIM_MARGIN", default=10.0)
# Proof that an order whose reply was lost never reached the broker: this many orderbook reads
# without it, each at least ORDER_ABSENCE_WINDOW seconds after it was sent (OpenAlgo goes on
# calling the broker after our client gives up, so an order can appear well after our timeout).
ORDER_ABSENCE_WINDOW = env.float("ORDER_ABSENCE_WINDOW", default=60.0)
ORDER_ABSENT_READS = env.int("ORDER_ABSENT_READS", default=3)
# A "rejected" or "cancelled" status read ends an order only when a second read at least this many
# seconds later (and the tradebook) confirms it: some brokers' mappings show a live order's
# transient state as the row before's status (Zerodha's carry-over).
ORDER_STATUS_CONFIRM_SECONDS = env.float("ORDER_STATUS_CONFIRM_SECONDS", default=2.0)
# An exit that cannot be placed is tried again this many seconds after its last attempt, at most
# EXIT_MAX_ATTEMPTS times in all; then it needs a human (account reducing, critical alert).
EXIT_RETRY_SECONDS = env.float("EXIT_RETRY_SECONDS", default=10.0)
EXIT_MAX_ATTEMPTS = env.int("EXIT_MAX_ATTEMPTS", default=5)
RECONCILE_SECONDS = env.int("RECONCILE_SECONDS", default=60)
