"""Admin pages of the events app: the outbox (what is pending and why), notifications, QC verdicts.

Everything is read-only except two actions: send notifications again now, and publish outbox messages
again (a consumer that lost its queue); the publisher does the sending.
"""

from __future__ import annotations

from django.contrib import admin

from semc.events.models import ExposureQC, Notification, OutboxMessage, PublisherLease, SessionQC


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "run", "seq", "type", "routing_key", "created_at", "published_at", "attempts", "last_error")
    list_filter = ("type", ("published_at", admin.EmptyFieldListFilter))
    search_fields = ("message_id", "routing_key", "run__session_name")
    list_select_related = ("run",)
    actions = ("publish_again",)

    @admin.action(description="Publish again (consumers de-duplicate by message id)")
    def publish_again(self, request, queryset) -> None:
        count = queryset.update(published_at=None)
        self.message_user(request, f"{count} message(s) will be published again")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "run", "channel", "subject", "created_at", "sent_at", "attempts", "last_error")
    list_filter = ("channel", ("sent_at", admin.EmptyFieldListFilter))
    actions = ("send_again",)

    @admin.action(description="Send again now")
    def send_again(self, request, queryset) -> None:
        count = queryset.update(sent_at=None, attempts=0, next_attempt_at=None)
        self.message_user(request, f"{count} notification(s) will be sent again")


@admin.register(SessionQC)
class SessionQCAdmin(ReadOnlyAdmin):
    list_display = ("run", "verdict", "reason", "exposures_seen", "updated_at")
    list_filter = ("verdict",)
    search_fields = ("run__session_name",)
    exclude = ("state",)


@admin.register(ExposureQC)
class ExposureQCAdmin(ReadOnlyAdmin):
    list_display = ("exposure_id", "filename", "run", "keep", "assessed", "created_at")
    list_filter = ("keep", "assessed")
    search_fields = ("filename", "run__session_name")


@admin.register(PublisherLease)
class PublisherLeaseAdmin(ReadOnlyAdmin):
    list_display = ("name", "owner", "expires_at")
