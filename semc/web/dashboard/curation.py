"""Rejecting exposures the way the classic image viewer does (appion-compat §1.4 ViewerImageStatus, §2.2).

myamiweb's hide/trash deletes the image's old ``ViewerImageStatus`` row and inserts a new one, so there
is at most one row per image; un-hiding deletes the row. ``hidden`` and ``trash`` reject the image:
classic Appion scripts run with rejections applied and SEMC's daemon skip it (and its statistics leave
it out of the backlog). The status is written for the chosen image and for its raw/aligned relatives
(the raw movie the daemon reads, the ``-a``/``-a-DW`` images the viewer shows), so the exposure is
rejected wherever it is looked at.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction

from semc import models as m
from semc.base.errors import InvalidParameters
from semc.dbsettings import LEGINON
from semc.web.dashboard.data import session_appion

__all__ = ["REJECT_STATUSES", "exposure_family", "exposures_reject", "exposures_unreject"]

logger = logging.getLogger(__name__)

#: the viewer statuses that reject an image
REJECT_STATUSES = (m.ViewerImageStatus.Status.HIDDEN, m.ViewerImageStatus.Status.TRASH)


def exposure_family(image_id: int) -> set[int]:
    """The image, its raw source and every aligned result of that source (call inside ``session_appion``)."""
    raw = (m.ApDDAlignImagePairData.objects.filter(result_id=image_id).values_list("source_id", flat=True).first()
           or image_id)
    results = set(m.ApDDAlignImagePairData.objects.filter(source_id=raw).values_list("result_id", flat=True))
    return {image_id, raw} | results


def _families(image_ids: Iterable[int]) -> dict[int, tuple[int, set[int]]]:
    """image id -> (session id, the ids of its family that exist in the Leginon database)."""
    sessions = dict(m.AcquisitionImageData.objects.filter(id__in=list(image_ids)).values_list("id", "session_id"))
    out = {}
    for image_id, session_id in sessions.items():
        with session_appion(session_id):
            family = exposure_family(image_id)
        existing = set(m.AcquisitionImageData.objects.filter(id__in=sorted(family), session_id=session_id)
                       .values_list("id", flat=True))
        out[image_id] = (session_id, existing)
    return out


def exposures_reject(image_ids: Iterable[int], *, status: str = m.ViewerImageStatus.Status.HIDDEN) -> int:
    """Give each exposure (and its family) the viewer status ``hidden`` or ``trash``; returns the number of
    images whose status was written.

    Raises
    ------
    InvalidParameters
        If ``status`` does not reject.
    """
    if status not in REJECT_STATUSES:
        raise InvalidParameters(f"viewer status {status!r} does not reject an image (use hidden or trash)")
    written = 0
    with transaction.atomic(using=LEGINON):
        for image_id, (session_id, family) in _families(image_ids).items():
            m.ViewerImageStatus.objects.filter(image_id__in=sorted(family)).delete()
            m.ViewerImageStatus.objects.bulk_create(
                [m.ViewerImageStatus(status=status, image_id=i, session_id=session_id) for i in sorted(family)])
            written += len(family)
            logger.info("exposure=%s session=%s viewer status %s on images %s", image_id, session_id, status,
                        sorted(family))
    return written


def exposures_unreject(image_ids: Iterable[int]) -> int:
    """Remove the viewer status of each exposure and its family (the viewer's un-hide); returns rows removed."""
    removed = 0
    with transaction.atomic(using=LEGINON):
        for _, family in _families(image_ids).values():
            removed += m.ViewerImageStatus.objects.filter(image_id__in=sorted(family)).delete()[0]
    return removed
