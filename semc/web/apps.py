"""Django application configuration (Web: dashboard and API)."""

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "semc.web"
    label = "semc_web"
    verbose_name = "SEMC Web: dashboard and API"
    default_auto_field = "django.db.models.BigAutoField"
