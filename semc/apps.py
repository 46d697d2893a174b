"""Django application configuration."""

from django.apps import AppConfig


class SemcConfig(AppConfig):
    name = "semc"
    verbose_name = "SEMC"
    default_auto_field = "django.db.models.BigAutoField"
