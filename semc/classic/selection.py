"""Which images a classic run may process, beyond the daemon's own filters (compat §2.1–§2.2).

`ImageSelection` is what the classic flags ``--mrclist``, ``--best-images``, ``--startimgid`` and
``--endimgid`` ask for; `excluded_ids` reads the rows it needs (controller process only).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ImageSelection", "best_image_ids", "excluded_ids"]

_CHUNK = 900  # SQLite's bound-parameter limit


@dataclass(frozen=True, slots=True)
class ImageSelection:
    """Classic image filters; the default selects everything.

    Attributes
    ----------
    filenames
        ``--mrclist``: only these image file names (with or without ``.mrc``).
    best_only
        ``--best-images``: only images whose combined status is "keep" (viewer ``exemplar`` or newest
        assessment ``selectionkeep`` 1, and neither hidden/trash nor rejected).
    start_id, end_id
        ``--startimgid`` / ``--endimgid``: DEF_id bounds (inclusive).
    """

    filenames: tuple[str, ...] | None = None
    best_only: bool = False
    start_id: int | None = None
    end_id: int | None = None

    @property
    def everything(self) -> bool:
        return self.filenames is None and not self.best_only and self.start_id is None and self.end_id is None

    @property
    def names(self) -> set[str]:
        return {n.removesuffix(".mrc") for n in self.filenames or ()}


def _chunks(ids: list[int]):
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


def best_image_ids(image_ids: Iterable[int]) -> set[int]:
    """Images whose classic combined status is True: a keep from the viewer (``exemplar``) or the newest
    assessment (``selectionkeep`` 1), and no reject from either (a reject overrides a keep)."""
    from semc import models as m

    best: set[int] = set()
    for chunk in _chunks(sorted(set(image_ids))):
        viewer: dict[int, str] = dict(m.ViewerImageStatus.objects.filter(image_id__in=chunk).order_by("id")
                                      .values_list("image_id", "status"))
        assessed: dict[int, int] = dict(m.ApAssessmentData.objects.filter(image_id__in=chunk).order_by("id")
                                        .values_list("image_id", "selectionkeep"))
        for image_id in chunk:
            status = viewer.get(image_id)
            keep = assessed.get(image_id)
            if status in ("hidden", "trash") or keep == 0:
                continue
            if status == "exemplar" or keep == 1:
                best.add(image_id)
    return best


def excluded_ids(image_ids: Iterable[int], selection: ImageSelection) -> set[int]:
    """The ids among ``image_ids`` that the selection leaves out."""
    ids = set(image_ids)
    if selection.everything or not ids:
        return set()
    out = {i for i in ids if (selection.start_id is not None and i < selection.start_id)
           or (selection.end_id is not None and i > selection.end_id)}
    if selection.filenames is not None:
        from semc import models as m

        wanted = selection.names
        for chunk in _chunks(sorted(ids - out)):
            out.update(pk for pk, name in m.AcquisitionImageData.objects.filter(id__in=chunk)
                       .values_list("id", "filename") if name not in wanted)
    if selection.best_only:
        out |= (ids - out) - best_image_ids(ids - out)
    return out
