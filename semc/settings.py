"""Django settings, built from SEMC's typed configuration (:mod:`semc.config`).

Nothing secret lives here: the secret key comes from ``SEMC_SECRET_KEY``, from
``semc.toml`` or from ``$SEMC_HOME/secret_key`` (created once, mode 0600).
``DEBUG`` is off unless ``SEMC_DEBUG`` asks for it. ``USE_TZ`` is False because
Leginon/MySQL write server-local timestamps (appion-compat §1.2, R8).
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from semc.base.errors import ConfigurationError
from semc.config import config_load
from semc.dbsettings import databases_from_config

logger = logging.getLogger(__name__)

try:
    SEMC_CONFIG = config_load()
except ConfigurationError as exc:  # Django expects ImproperlyConfigured from settings
    raise ImproperlyConfigured(str(exc)) from exc

SEMC_HOME = SEMC_CONFIG.home
BASE_DIR = Path(__file__).resolve().parent


def _secret_key() -> str:
    if SEMC_CONFIG["secret_key"]:
        return SEMC_CONFIG["secret_key"]
    path = SEMC_HOME / "secret_key"
    if path.is_file():
        key = path.read_text().strip()
        if key:
            return key
    key = secrets.token_urlsafe(50)
    try:
        SEMC_HOME.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
    except FileExistsError:  # another process created it first
        return path.read_text().strip()
    except OSError as exc:
        logger.warning("cannot persist a secret key under %s (%s); sessions will not survive restarts", path, exc)
    return key


SECRET_KEY = _secret_key()
DEBUG = SEMC_CONFIG["debug"]
ALLOWED_HOSTS = SEMC_CONFIG["allowed_hosts"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "semc.apps.SemcConfig",
    "semc.web.apps.WebConfig",
    "semc.ingest.apps.IngestConfig",
    "semc.events.apps.EventsConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "semc.urls"
WSGI_APPLICATION = "semc.wsgi.application"

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

DATABASES = databases_from_config(SEMC_CONFIG)
DATABASE_ROUTERS = ["semc.models.routers.ClassicRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = False
TIME_ZONE = os.environ.get("TZ", "UTC")
USE_I18N = False
LANGUAGE_CODE = "en-us"

STATIC_URL = "static/"
STATIC_ROOT = str(SEMC_HOME / "static")
#: `semc web` serves the static files itself (from the apps, no collectstatic) when this is set
SEMC_SERVE_STATIC = os.environ.get("SEMC_SERVE_STATIC", "") == "1"
#: failed API authentications per client address and window before it must wait (semc.web.auth)
SEMC_AUTH_FAILURES_MAX = 20
SEMC_AUTH_FAILURES_WINDOW_S = 300

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# Logging handlers are configured once, by the entry point (semc.cli.main), not here.
