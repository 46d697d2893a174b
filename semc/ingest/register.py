"""Turn a ready movie (and its gain reference) into the Leginon rows the daemon processes.

Values are taken from, in order: the watcher's overrides (``--apix``, ``--kv``, ``--dose``, ...),
the acquisition metadata (EPU XML, SerialEM mdoc), the movie's header. The metadata's pixel size
describes the image it came with; it is scaled to the movie by the ratio of their widths (EPU's
integrated image is often binned relative to the fractions).

Files: the daemon finds a movie as ``<frame path>/<filename>.frames.<ext>`` (compat §3.2), so
each registered movie gets a symbolic link of that name in ``<processed>/frames`` (the session's
``frame path``); aligned images are written to ``<processed>/rawdata`` (its ``image path``),
where EPU's integrated image, when there is one, is linked as ``<filename>.mrc``. A gain
reference is linked into ``<processed>/references`` (the image path of the hidden reference
session ``<session>_ref``) and recorded as a NormImageData; its orientation relative to the
frames goes on each exposure's CameraEMData (``frame rotate``, ``frame flip``) after its
shape has been checked against the frames (:func:`semc.base.io.orient_gain`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.db import transaction

from semc import models as m
from semc.base import units
from semc.base.errors import CorruptInput, InvalidParameters
from semc.base.io import load_gain, open_movie, orient_gain
from semc.dbsettings import LEGINON
from semc.ingest.layout import movie_kind
from semc.ingest.metadata import AcquisitionMetadata, camera_instrument_name
from semc.simulation.leginon_rows import (
    ExposureRecord,
    exposure_rows_create,
    instrument_ensure,
    pixel_calibration_ensure,
    preset_ensure,
    project_attach,
    user_ensure,
)

__all__ = [
    "FRAME_SUFFIX",
    "MovieHeader",
    "Overrides",
    "exposure_record_build",
    "gain_orientation_detect",
    "gain_register",
    "gain_shape_check",
    "leginon_orientation",
    "movie_header_read",
    "movie_register",
    "orient_gain_shape",
    "reference_session_ensure",
    "session_rows_ensure",
]

logger = logging.getLogger(__name__)

_STEP = "ingest"
#: movie kind -> Leginon rawtransfer suffix (compat §3.2)
FRAME_SUFFIX = {"mrc": ".frames.mrc", "tiff": ".frames.tif", "eer": ".frames.eer"}
_UNKNOWN_HOST = "semc-watch"


@dataclass(frozen=True, slots=True)
class Overrides:
    """Values the operator gives, which win over metadata and headers (units in the names)."""

    pixel_size_angstrom: float | None = None
    voltage_kv: float | None = None
    total_dose_e_per_a2: float | None = None
    dose_per_frame_e_per_a2: float | None = None
    cs_mm: float = 2.7
    preset_name: str = "enn"
    microscope: str | None = None
    camera: str | None = None
    gain_rotate: int = 0  # MotionCor -RotGain: quarter turns
    gain_flip: int = 0  # MotionCor -FlipGain: 0 none, 1 up-down, 2 left-right

    def __post_init__(self) -> None:
        for name in ("pixel_size_angstrom", "voltage_kv", "total_dose_e_per_a2", "dose_per_frame_e_per_a2"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InvalidParameters(f"{name} must be > 0, got {value}", step=_STEP)
        if self.total_dose_e_per_a2 is not None and self.dose_per_frame_e_per_a2 is not None:
            raise InvalidParameters("give the total dose or the dose per frame, not both", step=_STEP)
        if self.gain_rotate not in (0, 1, 2, 3) or self.gain_flip not in (0, 1, 2):
            raise InvalidParameters("gain rotation must be 0..3 and gain flip 0, 1 or 2", step=_STEP)
        if not self.cs_mm >= 0:
            raise InvalidParameters(f"Cs must be >= 0 mm, got {self.cs_mm}", step=_STEP)


@dataclass(frozen=True, slots=True)
class MovieHeader:
    """What a movie's own header says."""

    kind: str  # mrc | tiff | eer
    n_frames: int
    shape: tuple[int, int]  # (ny, nx) of a frame
    pixel_size_angstrom: float | None


def movie_header_read(path: str) -> MovieHeader:
    """Frames, frame shape and pixel size from the file (semc.base.io readers).

    Raises
    ------
    InputMissing, CorruptInput
    """
    with open_movie(path) as movie:
        return MovieHeader(kind=movie_kind(path), n_frames=int(movie.n_frames),
                           shape=(int(movie.frame_shape[0]), int(movie.frame_shape[1])),
                           pixel_size_angstrom=movie.pixel_size_angstrom or None)


def leginon_orientation(rotate: int, flip: int) -> tuple[int, bool]:
    """MotionCor ``-RotGain``/``-FlipGain`` as Leginon's ``frame rotate``/``frame flip`` (up-down only).

    Both rotate first, then flip (:func:`semc.base.io.orient_gain`); a left-right flip after ``r``
    quarter turns is an up-down flip after ``r + 2``.
    """
    if flip == 2:
        return (rotate + 2) % 4, True
    return rotate, flip == 1


def _link(target: str, link: Path) -> None:
    """``link`` -> ``target`` (absolute), replaced atomically when it points elsewhere."""
    link.parent.mkdir(parents=True, exist_ok=True)
    target = os.path.abspath(target)
    try:
        if os.readlink(link) == target:
            return
    except OSError:
        pass
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def session_rows_ensure(*, name: str, processed: Path, root: Path, user: str, project: str | None,
                        session_id: int | None) -> m.SessionData:
    """The Leginon session of a watched folder (created once, with its project row)."""
    if session_id is not None:
        found = m.SessionData.objects.filter(pk=session_id).first()
        if found is not None:
            return found
    for folder in ("rawdata", "frames"):
        (processed / folder).mkdir(parents=True, exist_ok=True)
    with transaction.atomic(using=LEGINON):
        session = m.SessionData.objects.create(
            name=name, user=user_ensure(user), image_path=str(processed / "rawdata"),
            frame_path=str(processed / "frames"), comment=f"registered by semc watch from {root}", hidden=False)
    project_attach(session, project_name=project)
    logger.info("session=%s created as SessionData %s (files under %s)", name, session.pk, processed)
    return session


def reference_session_ensure(session: m.SessionData, *, reference_id: int | None, processed: Path) -> m.SessionData:
    """The hidden ``<session>_ref`` session holding the gain references (created once)."""
    if reference_id is not None:
        found = m.SessionData.objects.filter(pk=reference_id).first()
        if found is not None:
            return found
    (processed / "references").mkdir(parents=True, exist_ok=True)
    return m.SessionData.objects.create(name=f"{session.name}_ref", user_id=session.user_id,
                                        image_path=str(processed / "references"), hidden=True,
                                        comment="reference images")


def gain_shape_check(gain_shape: tuple[int, int], frame_shape: tuple[int, int], *, rotate: int, flip: int,
                     path: str) -> None:
    """The gain, oriented as the frames will be, must have the frames' shape (or an integer scale of it).

    Raises
    ------
    CorruptInput
        Naming both shapes and what to change.
    """
    (gy, gx), (fy, fx) = orient_gain_shape(gain_shape, rotate), frame_shape
    if _scaled((gy, gx), (fy, fx)):
        return
    hint = " (it fits the frames turned by a quarter: change --gain-rotate)" if _scaled((gx, gy), (fy, fx)) else ""
    raise CorruptInput(f"gain reference is {gy}x{gx} after rotation {rotate} and flip {flip}, the frames are "
                       f"{fy}x{fx}{hint}", step=_STEP, path=path)


#: MotionCor (rotate, flip) candidates: every orientation once (a left-right flip is an up-down flip after two turns)
_ORIENTATIONS = tuple((r, f) for r in range(4) for f in (0, 1))


def gain_orientation_detect(gain, frame_sum, *, path: str) -> tuple[tuple[int, int], dict[str, float]]:
    """The MotionCor ``(-RotGain, -FlipGain)`` that brings a gain onto a movie, from the movie itself.

    A raw (not gain-corrected) frame sum carries the detector's sensitivity, the inverse of a
    multiplicative gain; the orientation whose inverse gain correlates best with the sum (dead
    pixels left out, Pearson over the live ones) wins, when it is clearly the best: at least 0.05
    and twice the runner-up.

    Returns
    -------
    tuple
        ``((rotate, flip), {"r,f": correlation, ...})``.

    Raises
    ------
    CorruptInput
        No orientation fits the frames' shape, or none stands out (give the orientation instead).
    """
    frame_sum = np.asarray(frame_sum, dtype=np.float64)
    scores: dict[str, float] = {}
    for rotate, flip in _ORIENTATIONS:
        oriented = orient_gain(np.asarray(gain, dtype=np.float64), rotate_90=rotate, flip=flip)
        if oriented.shape != frame_sum.shape:
            continue
        live = oriented > 0
        if live.sum() < 16:
            continue
        a = frame_sum[live] - frame_sum[live].mean()
        b = 1.0 / oriented[live]
        b -= b.mean()
        norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
        scores[f"{rotate},{flip}"] = float((a * b).sum() / norm) if norm > 0 else 0.0
    if not scores:
        raise CorruptInput(f"no orientation of the gain reference fits frames of {frame_sum.shape}", step=_STEP,
                           path=path)
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    (best, score), runner_up = ranked[0], (ranked[1][1] if len(ranked) > 1 else 0.0)
    if score < 0.05 or score < 2.0 * max(runner_up, 0.0):
        raise CorruptInput(f"cannot tell the gain reference's orientation from the frames (best {best} "
                           f"correlates {score:.3f}, next {runner_up:.3f}; are the movies gain-corrected "
                           "already?): give --gain-rotate/--gain-flip", step=_STEP, path=path)
    rotate, flip = (int(v) for v in best.split(","))
    return (rotate, flip), scores


def _scaled(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Equal, or one an integer multiple of the other on both axes (EER 4K/8K/16K, super-resolution)."""
    (ay, ax), (by, bx) = a, b
    return ay * bx == ax * by and (by % ay == 0 or ay % by == 0)


def orient_gain_shape(shape: tuple[int, int], rotate: int) -> tuple[int, int]:
    """The shape of a reference after :func:`semc.base.io.orient_gain` with ``rotate_90=rotate``."""
    return orient_gain(np.empty(shape, dtype=np.bool_), rotate_90=rotate).shape


def gain_register(path: str, *, session: m.SessionData, reference: m.SessionData, processed: Path,
                  camera: m.InstrumentData, link_name: str) -> tuple[m.NormImageData, tuple[int, int]]:
    """A gain reference as a NormImageData of the reference session (linked into its image path).

    Returns the row and the gain's shape ``(ny, nx)``. Idempotent per link name.

    Raises
    ------
    CorruptInput
        Unreadable or not a finite, positive image.
    """
    gain = load_gain(path, convention="multiply")
    finite = gain[gain > 0]
    if finite.size < 0.5 * gain.size:
        raise CorruptInput("gain reference is zero or not finite over more than half of its pixels", step=_STEP,
                           path=path)
    _link(path, processed / "references" / link_name)
    existing = m.NormImageData.objects.filter(session=reference, image=link_name).first()
    if existing is not None:
        return existing, (int(gain.shape[0]), int(gain.shape[1]))
    ny, nx = gain.shape
    with transaction.atomic(using=LEGINON):
        ref_camera = m.CameraEMData.objects.create(session=reference, ccdcamera=camera, dimension_x=nx,
                                                   dimension_y=ny, binning_x=1, binning_y=1, offset_x=0, offset_y=0,
                                                   nframes=1)
        norm = m.NormImageData.objects.create(session=reference, camera=ref_camera,
                                              filename=os.path.splitext(link_name)[0], image=link_name)
    logger.info("session=%s gain reference %s registered as NormImageData %s (%dx%d)", session.name, path,
                norm.pk, ny, nx)
    return norm, (int(ny), int(nx))


def _pixel_size(header: MovieHeader, meta: AcquisitionMetadata | None, overrides: Overrides, path: str) -> float:
    if overrides.pixel_size_angstrom:
        return overrides.pixel_size_angstrom
    if meta is not None and meta.pixel_size_angstrom:
        scale = (meta.image_width_px / header.shape[1]) if meta.image_width_px else 1.0
        return meta.pixel_size_angstrom * scale
    if header.pixel_size_angstrom:
        return header.pixel_size_angstrom
    raise CorruptInput("no pixel size: no metadata file says it, the header does not, and no --apix was given",
                       step=_STEP, path=path)


def exposure_record_build(*, filename: str, path: str, header: MovieHeader, meta: AcquisitionMetadata | None,
                          overrides: Overrides, gain_orientation: tuple[int, int] | None = None,
                          ) -> tuple[ExposureRecord, float]:
    """The Leginon values of one movie, and its pixel size (Å).

    Raises
    ------
    CorruptInput
        No pixel size or no voltage anywhere.
    """
    pixel = _pixel_size(header, meta, overrides, path)
    kv = overrides.voltage_kv or (meta.voltage_kv if meta is not None else None)
    if not kv:
        raise CorruptInput("no voltage: no metadata file says it and no --kv was given", step=_STEP, path=path)
    if overrides.dose_per_frame_e_per_a2:
        total = overrides.dose_per_frame_e_per_a2 * header.n_frames
    else:
        total = overrides.total_dose_e_per_a2 or (meta.total_dose_e_per_a2 if meta is not None else None)
    exposure_ms = meta.exposure_time_s * 1000.0 if meta is not None and meta.exposure_time_s else None
    rotate, flip = leginon_orientation(*(gain_orientation or (overrides.gain_rotate, overrides.gain_flip)))
    ny, nx = header.shape
    record = ExposureRecord(
        filename=filename, preset_name=overrides.preset_name, nx=nx, ny=ny, n_frames=header.n_frames,
        fmt=header.kind, high_tension_v=round(units.volt_from_kv(kv)),
        magnification=int(meta.magnification) if meta is not None and meta.magnification else 0,
        frame_time_ms=exposure_ms / header.n_frames if exposure_ms else None, exposure_time_ms=exposure_ms,
        defocus_m=meta.defocus_m if meta is not None else None,
        dose_e_per_m2=units.e_per_m2_from_e_per_a2(total) if total else None,
        acquired_at=meta.acquired_at if meta is not None else None,
        stage_a=(meta.stage_alpha_rad or 0.0) if meta is not None else 0.0,
        stage_b=meta.stage_beta_rad if meta is not None else None,
        stage_xyz=meta.stage_xyz_m if meta is not None else None,
        spot_size=meta.spot_size if meta is not None else None,
        probe_mode=meta.probe_mode if meta is not None else None,
        energy_filter=meta.energy_filter if meta is not None else None,
        energy_filter_width=meta.energy_filter_width_ev if meta is not None else None,
        frame_rotate=rotate, frame_flip=flip, frames_name=os.path.basename(path))
    return record, pixel


def _instruments(meta: AcquisitionMetadata | None, overrides: Overrides, *, eer: bool, cache: dict):
    host = (meta.microscope_host if meta is not None else None) or _UNKNOWN_HOST
    tem_name = overrides.microscope or (meta.microscope_name if meta is not None else None) or "TEM"
    camera_name = overrides.camera or camera_instrument_name(meta.camera_name if meta is not None else None, eer=eer)
    key = ("instruments", tem_name, camera_name, host)
    if key not in cache:
        cache[key] = (instrument_ensure(tem_name, host, cs=units.metre_from_mm(overrides.cs_mm)),
                      instrument_ensure(camera_name, host))
    return cache[key]


def movie_register(*, session: m.SessionData, path: str, filename: str, header: MovieHeader,
                   meta: AcquisitionMetadata | None, overrides: Overrides, processed: Path,
                   norm: m.NormImageData | None, integrated_image: str | None = None,
                   cache: dict | None = None, gain_orientation: tuple[int, int] | None = None) -> tuple[int, dict]:
    """Register one complete, stable movie; returns (AcquisitionImageData id, the values registered).

    Idempotent: a session that already has ``filename`` keeps its row (a restart after a crash
    between this and the registry's update registers nothing twice). ``cache`` (one dict per
    session, kept by the caller) remembers instruments, calibrations and presets already written.
    """
    cache = {} if cache is None else cache
    record, pixel = exposure_record_build(filename=filename, path=path, header=header, meta=meta,
                                          overrides=overrides, gain_orientation=gain_orientation)
    _link(path, processed / "frames" / f"{filename}{FRAME_SUFFIX[header.kind]}")
    if integrated_image and os.path.isfile(integrated_image):
        _link(integrated_image, processed / "rawdata" / f"{filename}.mrc")
    with transaction.atomic(using=LEGINON):
        tem, camera = _instruments(meta, overrides, eer=header.kind == "eer", cache=cache)
        calibration = ("calibration", record.magnification, tem.pk, camera.pk, pixel)
        if calibration not in cache:
            pixel_calibration_ensure(session, tem=tem, camera=camera, magnification=record.magnification,
                                     high_tension_v=record.high_tension_v,
                                     pixelsize_m=units.metre_from_angstrom(pixel) / record.binning)
        preset_key = ("preset", record.preset_name, record.dose_e_per_m2, record.magnification,
                      record.exposure_time_ms, record.nx, record.ny)
        preset = cache.get(preset_key) or preset_ensure(session, record, tem=tem, camera=camera)
        image = exposure_rows_create(session, record, tem=tem, camera=camera, preset=preset, norm=norm)
    # remembered only once the transaction has committed (a rolled-back row must not be reused)
    cache[calibration] = True
    cache[preset_key] = preset
    details = {"pixel_size_angstrom": pixel, "voltage_kv": units.kv_from_volt(record.high_tension_v),
               "total_dose_e_per_a2": units.e_per_a2_from_e_per_m2(record.dose_e_per_m2)
               if record.dose_e_per_m2 else None,
               "defocus_m": record.defocus_m, "n_frames": record.n_frames, "shape": list(header.shape),
               "frame_rotate": record.frame_rotate, "frame_flip": record.frame_flip,
               "metadata": meta.source if meta is not None else "header", "acquired_at": record.acquired_at,
               "gain": norm.image if norm is not None else None}
    return image.pk, details
