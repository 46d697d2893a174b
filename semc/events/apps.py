"""Django application configuration (Events and quality control)."""

from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "semc.events"
    label = "semc_events"
    verbose_name = "SEMC Events and quality control"
    default_auto_field = "django.db.models.BigAutoField"
