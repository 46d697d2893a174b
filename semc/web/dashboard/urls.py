"""URL patterns of the web dashboard."""

from django.urls import path  # noqa: F401

app_name = "dashboard"
urlpatterns: list = []
