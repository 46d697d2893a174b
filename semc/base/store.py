"""Writing shared state: one generic update helper, and one-line entity functions on top.

Only the controller process (and the admin) calls these; Dask tasks never do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models, transaction

__all__ = ["model_update", "exposure_steps_requeue"]


def model_update(*, instance: models.Model, fields: Iterable[str], data: dict[str, Any]) -> tuple[models.Model, bool]:
    """Set the given fields from ``data`` where they differ, validate, and save only those.

    Returns the instance and whether anything changed.
    """
    changed = []
    for field in fields:
        if field in data and getattr(instance, field) != data[field]:
            setattr(instance, field, data[field])
            changed.append(field)
    if changed:
        instance.full_clean(exclude=[f.name for f in instance._meta.fields if f.name not in changed])
        instance.save(update_fields=changed + (["updated_at"] if hasattr(instance, "updated_at") else []))
    return instance, bool(changed)


def exposure_steps_requeue(queryset: models.QuerySet) -> int:
    """Put failed or quarantined ledger lines back to pending, with a fresh attempt budget."""
    from semc.models.semc import StepState

    with transaction.atomic(using=queryset.db):
        return queryset.filter(state__in=[StepState.FAILED, StepState.QUARANTINED]).update(
            state=StepState.PENDING, attempts=0, next_attempt_at=None, lease_owner="", lease_expires_at=None
        )
