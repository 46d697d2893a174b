"""URL patterns of the web app: the JSON API under /api/, the dashboard at the root, and (when ``semc web``
serves the site, ``SEMC_SERVE_STATIC``) the static files under ``STATIC_URL``."""

from django.conf import settings
from django.contrib.staticfiles.views import serve
from django.urls import include, path, re_path

urlpatterns = [
    path("api/", include("semc.web.api.urls")),
    path("", include("semc.web.dashboard.urls")),
]

if getattr(settings, "SEMC_SERVE_STATIC", False):
    # through the middleware stack: security headers, and a traversal attempt is a 400, never a file
    urlpatterns.insert(0, re_path(rf"^{settings.STATIC_URL.strip('/')}/(?P<path>.+)$", serve, {"insecure": True}))
