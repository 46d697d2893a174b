"""URL configuration: the admin (the dashboard and API arrive with the web issue)."""

from django.contrib import admin
from django.urls import path

admin.site.site_header = "SEMC administration"
admin.site.site_title = "SEMC"
admin.site.index_title = "Sessions, exposures and results"

urlpatterns = [
    path("admin/", admin.site.urls),
]
