"""Django application configuration (Ingest: EPU and SerialEM folders)."""

from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "semc.ingest"
    label = "semc_ingest"
    verbose_name = "SEMC Ingest: EPU and SerialEM folders"
    default_auto_field = "django.db.models.BigAutoField"
