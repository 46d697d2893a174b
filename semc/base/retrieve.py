"""Reading shared state: sessions, exposures, rejections and everything a worker needs per exposure.

Runs in the controller only. Every value read from the database that becomes part of a
path (file names, directory names) is validated first; ``SEQ|`` columns are decoded with
:mod:`semc.models.codecs`. Missing rows raise :class:`~semc.base.errors.InputMissing`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from semc import models as m
from semc.base import units
from semc.base.errors import InputMissing, InvalidParameters
from semc.base.exposure import DefectPlan, ExposureInputs
from semc.base.calc import tilt_rejected
from semc.models.codecs import pairs_decode, seq_decode

__all__ = [
    "session_get",
    "exposure_ids_list",
    "rejected_ids",
    "exposure_inputs_get",
    "pixel_size_angstrom_for",
    "movie_path_find",
    "path_component_check",
    "MOVIE_SUFFIXES",
]

logger = logging.getLogger(__name__)

#: Leginon's rawtransfer names, in the order [S] probes them (compat §3.2)
MOVIE_SUFFIXES = (".frames.mrc", ".frames.mrcs", ".frames.tif", ".frames.tiff", ".frames.eer")
_CHUNK = 900  # stay below SQLite's bound-parameter limit


def path_component_check(name: str, *, what: str, exposure_id: int | None = None) -> str:
    """A file name from the database, refused if it could escape its directory."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        raise InvalidParameters(f"invalid {what} {name!r} in the database", exposure_id=exposure_id)
    return name


def session_get(session: str | int) -> m.SessionData:
    """A session by name or ``DEF_id``."""
    query = m.SessionData.objects.all()
    try:
        if isinstance(session, int) or str(session).isdigit():
            return query.get(pk=int(session))
        return query.filter(name=session).order_by("-id")[:1].get()
    except m.SessionData.DoesNotExist:
        raise InputMissing(f"no session {session!r} in the Leginon database") from None


def exposure_ids_list(*, session_id: int, preset: str | None, after_id: int = 0,
                      filenames: Iterable[str] | None = None) -> list[tuple[int, float | None]]:
    """Ids (and arrival times, epoch s) of the session's exposures newer than ``after_id``.

    ``preset`` selects images whose preset row has that name; ``manual`` selects images
    without a preset (compat §2.1); None selects every image of the session.
    """
    query = m.AcquisitionImageData.objects.filter(session_id=session_id, id__gt=after_id)
    if filenames is not None:
        query = query.filter(filename__in=list(filenames))
    elif preset == "manual":
        query = query.filter(preset__isnull=True)
    elif preset:
        query = query.filter(preset__name=preset)
    rows = query.order_by("id").values_list("id", "timestamp")
    return [(pk, ts.timestamp() if ts is not None and hasattr(ts, "timestamp") else None) for pk, ts in rows]


def rejected_ids(*, image_ids: Iterable[int], tilt_mode: str = "all", use_viewer: bool = True,
                 use_assessment: bool = True) -> set[int]:
    """Exposures rejected by the newest viewer status (hidden, trash), the newest assessment
    (selectionkeep 0) or the tilt filter (compat §2.2)."""
    ids = sorted(set(image_ids))
    rejected: set[int] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        if use_viewer:
            newest: dict[int, str] = {}
            for image_id, status in (m.ViewerImageStatus.objects.filter(image_id__in=chunk)
                                     .order_by("id").values_list("image_id", "status")):
                newest[image_id] = status
            rejected.update(i for i, s in newest.items() if s in ("hidden", "trash"))
        if use_assessment:
            keep: dict[int, int] = {}
            for image_id, value in (m.ApAssessmentData.objects.filter(image_id__in=chunk)
                                    .order_by("id").values_list("image_id", "selectionkeep")):
                keep[image_id] = value
            rejected.update(i for i, v in keep.items() if v == 0)
        if tilt_mode != "all":
            for image_id, alpha in (m.AcquisitionImageData.objects.filter(id__in=chunk)
                                    .values_list("id", "scope__stage_a")):
                if tilt_rejected(alpha, tilt_mode):
                    rejected.add(image_id)
    return rejected


def pixel_size_angstrom_for(image: m.AcquisitionImageData) -> float:
    """Image pixel size: calibration of (magnification, TEM, camera) in force at the image's time,
    else the oldest; times the camera binning (compat §1.4)."""
    scope, camera = image.scope, image.camera
    if scope is None or camera is None:
        raise InputMissing("exposure has no scope or camera row", exposure_id=image.pk)
    rows = list(m.PixelSizeCalibrationData.objects.filter(
        magnification=scope.magnification, tem_id=scope.tem_id, ccdcamera_id=camera.ccdcamera_id,
    ).order_by("-timestamp", "-id").values_list("timestamp", "pixelsize"))
    if not rows:
        raise InputMissing(f"no pixel size calibration for magnification {scope.magnification}",
                           exposure_id=image.pk)
    chosen = next((size for ts, size in rows if image.timestamp is None or ts <= image.timestamp), rows[-1][1])
    return units.angstrom_from_metre(chosen * (camera.binning_x or 1))


def movie_path_find(frame_path: str, filename: str, camera: m.CameraEMData | None, *,
                    exposure_id: int | None = None) -> str:
    """The movie of an exposure: ``<frame path>/<filename>.frames.<ext>``.

    The camera's flags pick the expected extension ([C]); if that file is absent, the other
    suffixes are probed ([S]). When none exists, the expected path is returned: the worker's
    readiness check tells "not yet transferred" from "missing".
    """
    path_component_check(filename, what="filename", exposure_id=exposure_id)
    base = Path(frame_path)
    if camera is not None and camera.eer_frames:
        expected = ".frames.eer"
    elif camera is not None and camera.tiff_frames:
        expected = ".frames.tif"
    else:
        expected = ".frames.mrc"
    for suffix in (expected, *[s for s in MOVIE_SUFFIXES if s != expected]):
        candidate = base / f"{filename}{suffix}"
        if candidate.exists():
            return str(candidate)
    return str(base / f"{filename}{expected}")


def _reference_path(ref, *, exposure_id: int) -> str | None:
    if ref is None or not ref.image:
        return None
    session = ref.session
    if session is None or not session.image_path:
        raise InputMissing(f"reference {ref.filename} has no session image path", exposure_id=exposure_id)
    return os.path.join(session.image_path, path_component_check(ref.image, what="reference image",
                                                                 exposure_id=exposure_id))


def _frame_count(image: m.AcquisitionImageData) -> int:
    camera = image.camera
    name = image.camera.ccdcamera.name if camera.ccdcamera_id and camera.ccdcamera else ""
    if name in ("GatanK2", "GatanK3") and camera.exposure_time and camera.frame_time:
        return max(1, int(camera.exposure_time / camera.frame_time))
    if camera.nframes:
        return int(camera.nframes)
    if camera.exposure_time and camera.frame_time:
        return max(1, int(camera.exposure_time / camera.frame_time))
    raise InputMissing("cannot tell the number of frames (no nframes, no exposure/frame time)",
                       exposure_id=image.pk)


def exposure_inputs_get(image_id: int) -> ExposureInputs:
    """Everything a worker needs to process one raw exposure."""
    try:
        image = (m.AcquisitionImageData.objects
                 .select_related("session", "preset", "camera__ccdcamera", "scope__tem", "norm__session",
                                 "dark__session", "dark__camera", "corrector_plan").get(pk=image_id))
    except m.AcquisitionImageData.DoesNotExist:
        raise InputMissing(f"no exposure {image_id}", exposure_id=image_id) from None
    session, camera, scope = image.session, image.camera, image.scope
    if session is None or camera is None or scope is None:
        raise InputMissing("exposure lacks its session, camera or scope row", exposure_id=image_id)
    if scope.tem is None or scope.tem.cs is None:
        raise InputMissing("the session's microscope has no Cs", exposure_id=image_id)
    n_frames = _frame_count(image)
    total = units.e_per_a2_from_e_per_m2(image.preset.dose) if image.preset and image.preset.dose else None
    plan = image.corrector_plan
    defects = DefectPlan(
        bad_rows=seq_decode(plan.bad_rows, column="SEQ|bad_rows"),
        bad_cols=seq_decode(plan.bad_cols, column="SEQ|bad_cols"),
        bad_pixels=pairs_decode(plan.bad_pixels),
        plan_id=plan.pk,
    ) if plan is not None else DefectPlan()
    return ExposureInputs(
        exposure_id=image.pk, session_id=session.pk, session_name=session.name,
        filename=path_component_check(image.filename, what="filename", exposure_id=image_id),
        preset_name=image.preset.name if image.preset else None,
        movie_path=movie_path_find(session.frame_path or "", image.filename, camera, exposure_id=image_id),
        image_path=session.image_path or "",
        pixel_size_angstrom=pixel_size_angstrom_for(image),
        voltage_kv=units.kv_from_volt(scope.high_tension), cs_mm=units.mm_from_metre(scope.tem.cs),
        n_frames=n_frames, total_dose_e_per_a2=total,
        dose_per_frame_e_per_a2=total / n_frames if total else None,
        frame_time_ms=camera.frame_time, camera_name=camera.ccdcamera.name if camera.ccdcamera else "",
        frame_rotate=int(camera.frame_rotate or 0), frame_flip=bool(camera.frame_flip), eer=bool(camera.eer_frames),
        gain_path=_reference_path(image.norm, exposure_id=image_id),
        dark_path=_reference_path(image.dark, exposure_id=image_id),
        dark_n_frames=(image.dark.camera.nframes if image.dark and image.dark.camera else None),
        defects=defects,
        nominal_defocus_angstrom=abs(units.angstrom_from_metre(scope.defocus)) if scope.defocus else None,
        stage_alpha_deg=units.degree_from_radian(scope.stage_a or 0.0),
        camera_id=camera.pk, scope_id=scope.pk, preset_id=image.preset_id,
        arrived_at_epoch_s=image.timestamp.timestamp() if hasattr(image.timestamp, "timestamp") else None,
        camera_dimensions=(camera.dimension_x, camera.dimension_y) if camera.dimension_x and camera.dimension_y
        else None,
    )
