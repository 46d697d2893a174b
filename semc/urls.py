"""URL configuration: the admin, the JSON API and the dashboard."""

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "SEMC administration"
admin.site.site_title = "SEMC"
admin.site.index_title = "Sessions, exposures and results"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("semc.web.urls")),
]
