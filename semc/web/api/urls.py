"""URL patterns of the web api (mounted under /api/), the USC CryoEM service's paths and a few more."""

from django.urls import path, re_path

from semc.web.api import views

app_name = "api"
_SESSION = "<int:project_id>/<str:user>/session/<str:session>"
urlpatterns: list = [
    path("openapi.json", views.openapi, name="openapi"),
    path("<int:project_id>/<str:user>/sessions", views.sessions, name="sessions"),
    path(_SESSION, views.session_detail, name="session"),
    path(f"{_SESSION}/start-processing", views.start_processing, name="start-processing"),
    path(f"{_SESSION}/stop-processing", views.stop_processing, name="stop-processing"),
    path(f"{_SESSION}/resume-processing", views.resume_processing, name="resume-processing"),
    path(f"{_SESSION}/requests", views.session_requests, name="requests"),
    path(f"{_SESSION}/timeline", views.session_timeline, name="timeline"),
    path(f"{_SESSION}/failures", views.session_failures, name="failures"),
    re_path(r"^(?P<path>.*)$", views.not_found, name="not-found"),
]
