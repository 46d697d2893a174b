"""The dashboard's and the admin's pictures: rendered lazily from the stored results, cached on disk.

Pictures live under ``$SEMC_HOME/cache/pictures/<kind>/<id>-<version digest>.png`` (see
:func:`semc.base.imaging.cached_png`): the kind is one of the fixed names below and the id an integer,
so nothing from a URL names a file. The version string changes when the inputs change (new rows, a
rewritten file), so a picture is rendered once per change and stale ones are removed.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from pathlib import Path

import numpy as np
from django.conf import settings

from semc import models as m
from semc.base.errors import ProcessingError
from semc.base.imaging import (
    block_mean,
    cached_png,
    ctf_profile_png,
    drift_trajectory_png,
    histogram_png,
    series_png,
    spectrum_rings_png,
    thumbnail_png,
)
from semc.web import stats
from semc.web.dashboard import data

__all__ = ["EXPOSURE_KINDS", "SESSION_KINDS", "cache_dir", "exposure_available", "exposure_picture",
           "session_picture", "session_version"]

logger = logging.getLogger(__name__)

#: per exposure: micrograph thumbnail, power spectrum with the fitted rings, 1-D CTF fit, drift trajectory
EXPOSURE_KINDS = ("thumb", "spectrum", "ctffit", "drift")
#: per session: science (classic tables) and pipeline (SEMC's ledger) plots
SESSION_KINDS = ("defocus", "astigmatism", "resolution", "drift", "backlog", "throughput", "latency")
_TIMELINE_KINDS = ("backlog", "throughput", "latency")
_SPECTRUM_BOX = 512


def cache_dir() -> Path:
    return Path(settings.SEMC_HOME) / "cache" / "pictures"


def _file_version(path: Path | None) -> str:
    if path is None:
        return "-"
    stat = path.stat()
    return f"{path}:{stat.st_mtime_ns}:{stat.st_size}"


# --- per exposure --------------------------------------------------------------------------------
def exposure_picture(image_id: int, kind: str) -> Path | None:
    """The picture ``kind`` of exposure ``image_id`` (raw or aligned), or None when there is nothing to show.

    Raises
    ------
    ValueError
        If ``kind`` is not one of :data:`EXPOSURE_KINDS`.
    """
    if kind not in EXPOSURE_KINDS:
        raise ValueError(f"no exposure picture {kind!r}")
    session_id = m.AcquisitionImageData.objects.filter(pk=image_id).values_list("session_id", flat=True).first()
    if session_id is None:
        return None
    with data.session_appion(session_id):
        results = data.exposure_results(image_id)
        if results is None:
            return None
        return _EXPOSURE_RENDERERS[kind](results)


def _thumb(results: data.ExposureResults) -> Path | None:
    path = results.micrograph_path
    if path is None:
        return None

    def render(target: Path) -> None:
        from semc.base.io import read_image

        image, _ = read_image(path)
        thumbnail_png(image, target, size_px=256)

    return cached_png(cache_dir(), "exp_thumb", results.image.pk, _file_version(path), render)


def _spectrum_from_micrograph(image: np.ndarray, box: int = _SPECTRUM_BOX) -> np.ndarray:
    """Log power spectrum averaged over half-overlapping tiles, zero frequency at the centre."""
    data = np.asarray(image, dtype=np.float32)
    box = min(box, *data.shape) // 2 * 2
    step = box // 2
    total = np.zeros((box, box), dtype=np.float64)
    count = 0
    for y in range(0, data.shape[0] - box + 1, step):
        for x in range(0, data.shape[1] - box + 1, step):
            tile = data[y:y + box, x:x + box]
            total += np.abs(np.fft.fft2(tile - tile.mean())) ** 2
            count += 1
    spectrum = np.fft.fftshift(np.log(total / max(count, 1) + 1e-12))
    spectrum[box // 2, box // 2] = np.median(spectrum)  # the DC term says nothing about the CTF
    return spectrum


def _ring_phase(results: data.ExposureResults, shape: tuple[int, int], pixel_angstrom: float) -> np.ndarray | None:
    """The fitted CTF's phase on the spectrum grid (NaN beyond the fit resolution), or None."""
    from semc.ctfestimation.calc.internal.model import CtfOptics, ctf_phase

    ctf = results.ctf
    if ctf is None or results.voltage_kv is None or ctf.defocus1 is None or ctf.defocus2 is None:
        return None
    try:
        optics = CtfOptics(voltage_kv=results.voltage_kv, spherical_aberration_mm=ctf.cs or 2.7,
                           amplitude_contrast=ctf.amplitude_contrast or 0.0)
    except ProcessingError:
        return None
    ny, nx = shape
    ky = (np.arange(ny) - ny // 2) / (ny * pixel_angstrom)
    kx = (np.arange(nx) - nx // 2) / (nx * pixel_angstrom)
    gy, gx = np.meshgrid(ky, kx, indexing="ij")
    g = np.hypot(gx, gy)
    # ApCtfData's (defocus1, defocus2, angle) describe the same CTF as CTFFIND's own triple (compat §5.6)
    phase = ctf_phase(optics=optics, spatial_frequency_per_angstrom=g, azimuth_radian=np.arctan2(gy, gx),
                      defocus_1_angstrom=ctf.defocus1 * 1e10, defocus_2_angstrom=ctf.defocus2 * 1e10,
                      astigmatism_azimuth_degree=ctf.angle_astigmatism or 0.0,
                      phase_shift_radian=ctf.extra_phase_shift or 0.0)
    resolution = ctf.ctffind4_resolution
    if resolution and math.isfinite(resolution) and resolution < data.RESOLUTION_UNKNOWN_ANGSTROM:
        phase = np.where(g <= 1.0 / resolution, phase, np.nan)
    return phase


def _spectrum(results: data.ExposureResults) -> Path | None:
    diagnostic = results.diagnostic_path
    micrograph = results.micrograph_path if diagnostic is None else None
    if diagnostic is None and micrograph is None:
        return None
    ctf = results.ctf
    version = f"{_file_version(diagnostic or micrograph)}:{getattr(ctf, 'pk', 0)}:{results.voltage_kv}"

    def render(target: Path) -> None:
        from semc.base.io import read_image

        if diagnostic is not None:
            spectrum, pixel = read_image(diagnostic)
        else:
            image, pixel = read_image(micrograph)
            pixel = (results.stats.apix if results.stats is not None and results.stats.apix else pixel)
            factor = max(1, min(image.shape) // (2 * _SPECTRUM_BOX))  # keep the CTF's zeros, skip the noise
            spectrum = _spectrum_from_micrograph(block_mean(image, factor))
            pixel = pixel * factor if pixel else None
        phase = _ring_phase(results, spectrum.shape, pixel) if pixel else None
        title = None
        if ctf is not None and ctf.defocus1 is not None and ctf.defocus2 is not None:
            title = f"{0.5 * (ctf.defocus1 + ctf.defocus2) * 1e6:.2f} µm"
        spectrum_rings_png(spectrum, target, ring_phase=phase, size_px=256, title=title)

    return cached_png(cache_dir(), "exp_spectrum", results.image.pk, version, render)


def _ctffit(results: data.ExposureResults) -> Path | None:
    avrot = results.avrot_path
    if avrot is None:
        return None

    def render(target: Path) -> None:
        from semc.ctfestimation.calc.external import ctffind_avrot_parse

        curves = ctffind_avrot_parse(avrot.read_text(), path=str(avrot), exposure_id=results.raw_id)[0]
        frequency = curves.spatial_frequency_per_angstrom
        ctf_profile_png(frequency, {"spectrum": curves.rotational_average, "CTF fit": curves.ctf_fit,
                                    "fit quality": curves.cross_correlation}, target,
                        max_frequency=float(frequency.max()), dpi=80, size_in=(4.2, 2.6))

    return cached_png(cache_dir(), "exp_ctffit", results.image.pk, _file_version(avrot), render)


def _drift(results: data.ExposureResults) -> Path | None:
    positions = results.drift_angstrom
    if positions is None or not positions[0]:
        return None
    xs, ys = positions

    def render(target: Path) -> None:
        drift_trajectory_png(xs, ys, target, title=f"total {data.path_length(xs, ys):.1f} Å, {len(xs)} frames")

    return cached_png(cache_dir(), "exp_drift", results.image.pk, f"{results.trajectory.pk}:{xs}:{ys}", render)


_EXPOSURE_RENDERERS = {"thumb": _thumb, "spectrum": _spectrum, "ctffit": _ctffit, "drift": _drift}


def exposure_available(image_id: int) -> tuple[list[str], data.ExposureResults | None]:
    """The picture kinds exposure ``image_id`` has inputs for (nothing is rendered), and its results."""
    session_id = m.AcquisitionImageData.objects.filter(pk=image_id).values_list("session_id", flat=True).first()
    if session_id is None:
        return [], None
    with data.session_appion(session_id):
        results = data.exposure_results(image_id)
    if results is None:
        return [], None
    has = {"thumb": results.micrograph_path is not None,
           "spectrum": results.diagnostic_path is not None or results.micrograph_path is not None,
           "ctffit": results.avrot_path is not None, "drift": bool(results.drift_angstrom and
                                                                  results.drift_angstrom[0])}
    return [kind for kind in EXPOSURE_KINDS if has[kind]], results


# --- per session ---------------------------------------------------------------------------------
def session_version(session_id: int, run: m.ProcessingRun | None, kind: str, runs: data.ClassicRuns) -> str:
    """A string that changes when the inputs of a session picture change."""
    if kind in _TIMELINE_KINDS:
        if run is None:
            return "no-run"
        lines = m.ExposureStep.objects.filter(run=run)
        newest = lines.order_by("-updated_at").values_list("updated_at", flat=True).first()
        minute = dt.datetime.now().replace(second=0, microsecond=0)  # the time axis grows with the clock
        return f"{run.pk}:{lines.count()}:{newest}:{minute}"
    if kind == "drift":
        rows = m.ApDDAlignStatsData.objects.filter(ddstackrun=runs.ddstackrun) if runs.ddstackrun else None
    else:
        rows = m.ApCtfData.objects.filter(acerun=runs.acerun) if runs.acerun else None
    if rows is None:
        return f"{runs.key}:none"
    return f"{runs.key}:{rows.count()}:{rows.order_by('-id').values_list('id', flat=True).first()}"


def session_picture(session_id: int, run: m.ProcessingRun | None, kind: str) -> Path:
    """The session plot ``kind`` for SEMC's ``run`` (None: the session's newest classic runs).

    Raises
    ------
    ValueError
        If ``kind`` is not one of :data:`SESSION_KINDS`.
    """
    if kind not in SESSION_KINDS:
        raise ValueError(f"no session picture {kind!r}")
    with data.session_appion(session_id):
        runs = data.classic_runs(session_id, run)
        version = session_version(session_id, run, kind, runs)

        def render(target: Path) -> None:
            _SESSION_RENDERERS[kind](session_id, run, runs, target)

        return cached_png(cache_dir(), f"ses_{kind}", session_id, version, render)


def _ctf_series(session_id: int, runs: data.ClassicRuns, target: Path, *, value: str, ylabel: str) -> None:
    points = [p for p in data.ctf_points(session_id, runs.acerun) if p.minutes is not None]
    series_png([p.minutes for p in points], {ylabel: [getattr(p, value) for p in points]}, target,
               xlabel="minutes since the first exposure", ylabel=ylabel)


def _defocus(session_id, run, runs, target) -> None:
    _ctf_series(session_id, runs, target, value="defocus_um", ylabel="defocus (µm)")


def _astigmatism(session_id, run, runs, target) -> None:
    _ctf_series(session_id, runs, target, value="astigmatism_angstrom", ylabel="astigmatism (Å)")


def _resolution(session_id, run, runs, target) -> None:
    values = [p.resolution_angstrom if p.resolution_angstrom is not None else math.inf
              for p in data.ctf_points(session_id, runs.acerun)]
    histogram_png(values, target, xlabel="CTF fit resolution (Å)", bins=20)


def _drift_series(session_id, run, runs, target) -> None:
    points = [p for p in data.drift_points(session_id, runs.ddstackrun) if p.minutes is not None]
    series_png([p.minutes for p in points], {"total drift (Å)": [p.total_angstrom for p in points]}, target,
               xlabel="minutes since the first exposure", ylabel="total drift (Å)")


def _timeline(run: m.ProcessingRun | None) -> tuple[list[float], list[stats.TimelinePoint]]:
    points = stats.session_timeline(run.pk, bin_s=60.0) if run is not None else []
    origin = points[0].start if points else None
    return [(p.end - origin).total_seconds() / 60.0 for p in points], points


def _backlog(session_id, run, runs, target) -> None:
    x, points = _timeline(run)
    series_png(x, {"backlog": [p.backlog for p in points]}, target, xlabel="minutes since the run's first exposure",
               ylabel="exposures to do", step=True)


def _throughput(session_id, run, runs, target) -> None:
    x, points = _timeline(run)
    series_png(x, {"stored": [p.throughput_per_min for p in points],
                   "arrived": [p.arrived / ((p.end - p.start).total_seconds() / 60.0 or 1.0) for p in points]},
               target, xlabel="minutes since the run's first exposure", ylabel="exposures / min", step=True)


def _latency(session_id, run, runs, target) -> None:
    x, points = _timeline(run)
    series_png(x, {"p50": [p.latency_p50_s for p in points], "p95": [p.latency_p95_s for p in points]}, target,
               xlabel="minutes since the run's first exposure", ylabel="latency (s)")


_SESSION_RENDERERS = {"defocus": _defocus, "astigmatism": _astigmatism, "resolution": _resolution,
                      "drift": _drift_series, "backlog": _backlog, "throughput": _throughput, "latency": _latency}
