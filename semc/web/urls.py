"""URL patterns of the web app: the JSON API under /api/, the dashboard at the root."""

from django.urls import include, path

urlpatterns = [
    path("api/", include("semc.web.api.urls")),
    path("", include("semc.web.dashboard.urls")),
]
