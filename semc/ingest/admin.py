"""Admin pages of the watcher's registry: watched sessions and every file seen, with its state and reason."""

from __future__ import annotations

from django.contrib import admin

from semc.ingest.models import WatchedFile, WatchedSession


@admin.register(WatchedSession)
class WatchedSessionAdmin(admin.ModelAdmin):
    list_display = ("session_name", "layout", "project_name", "user_name", "root", "leginon_session_id", "created_at")
    list_filter = ("layout",)
    search_fields = ("session_name", "root", "project_name", "user_name")
    readonly_fields = tuple(f.name for f in WatchedSession._meta.fields)


@admin.register(WatchedFile)
class WatchedFileAdmin(admin.ModelAdmin):
    list_display = ("path", "kind", "state", "reason", "filename", "exposure_id", "grid_square", "foil_hole",
                    "registered_at")
    list_filter = ("kind", "state", "session__session_name")
    search_fields = ("path", "filename", "reason")
    readonly_fields = tuple(f.name for f in WatchedFile._meta.fields)
    list_select_related = ("session",)
    show_full_result_count = False  # counting a large registry on every page is slow

    def has_add_permission(self, request) -> bool:
        return False
