"""Small PNG/JPEG pictures for the web viewer, the admin and myamiweb: spectra with fits, 1-D CTF plots,
micrograph thumbnails, drift trajectories and session plots. Rendered with matplotlib's Agg backend
(``matplotlib.figure.Figure``, never pyplot: no display, no global state), written atomically.

Pure: arrays and numbers in, a file out; no ORM. :func:`cached_png` keeps lazily rendered pictures under
a cache folder, named only from integer ids and checked kind names (never from names out of a URL).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "CACHE_KIND_PATTERN",
    "block_mean",
    "cached_png",
    "ctf_profile_png",
    "drift_trajectory_png",
    "histogram_png",
    "image_png",
    "series_png",
    "spectrum_rings_png",
    "thumbnail_png",
]

logger = logging.getLogger(__name__)

#: the only names allowed as a cache folder (a picture kind); ids are integers
CACHE_KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

_DPI = 80
_PLOT_SIZE_IN = (4.2, 2.6)  # 336 x 208 px at 80 dpi: small enough for a dashboard tile


def _save(fig, path: Path, *, dpi: int = 100) -> None:
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    fig.savefig(tmp, dpi=dpi)
    os.replace(tmp, path)


def _figure(width_in: float, height_in: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in))


def image_png(image: np.ndarray, path: str | os.PathLike, *, size_px: int = 512, clip_sigma: float = 3.0) -> str:
    """A grey-scale picture of a 2-D image (thumbnail or spectrum), contrast clipped at ±clip_sigma."""
    path = Path(path)
    data = np.asarray(image, dtype=np.float32)
    step = max(1, int(np.ceil(max(data.shape) / size_px)))
    data = data[::step, ::step]
    mean, sd = float(data.mean()), float(data.std()) or 1.0
    fig = _figure(data.shape[1] / 100, data.shape[0] / 100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(data, cmap="gray", vmin=mean - clip_sigma * sd, vmax=mean + clip_sigma * sd, origin="lower")
    ax.set_axis_off()
    _save(fig, path)
    return path.name


def ctf_profile_png(frequency_per_angstrom: np.ndarray, curves: dict[str, np.ndarray], path: str | os.PathLike, *,
                    max_frequency: float = 1 / 3.5, dpi: int = 100, size_in: tuple[float, float] = (6, 3.5)) -> str:
    """The 1-D rotational average with the fitted CTF (CTFFIND's ``_avrot`` curves), up to ``max_frequency``."""
    path = Path(path)
    fig = _figure(*size_in)
    ax = fig.add_subplot()
    keep = (frequency_per_angstrom > 0) & (frequency_per_angstrom <= max_frequency)
    keep[0] = False
    for label, values in curves.items():
        ax.plot(frequency_per_angstrom[keep], np.asarray(values)[keep], label=label, linewidth=1)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    _save(fig, path, dpi=dpi)
    return path.name


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` × ``factor`` blocks (edges that do not fill a block are dropped).

    Binning, not striding, so a thumbnail keeps the noise statistics of the micrograph instead of aliasing.

    Raises
    ------
    ValueError
        If ``image`` is not 2-D, ``factor`` < 1, or the image is smaller than one block.
    """
    data = np.asarray(image, dtype=np.float32)
    if data.ndim != 2:
        raise ValueError(f"block_mean needs a 2-D image, got shape {data.shape}")
    if factor < 1 or min(data.shape) < factor:
        raise ValueError(f"cannot bin a {data.shape} image by {factor}")
    if factor == 1:
        return data
    ny, nx = (data.shape[0] // factor) * factor, (data.shape[1] // factor) * factor
    return data[:ny, :nx].reshape(ny // factor, factor, nx // factor, factor).mean(axis=(1, 3))


def _grey_limits(data: np.ndarray, clip_sigma: float) -> tuple[float, float]:
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return 0.0, 1.0
    mean, sd = float(finite.mean()), float(finite.std())
    sd = sd if sd > 0 else 1.0
    return mean - clip_sigma * sd, mean + clip_sigma * sd


def thumbnail_png(image: np.ndarray, path: str | os.PathLike, *, size_px: int = 256, clip_sigma: float = 3.0) -> Path:
    """A binned grey-scale thumbnail of a micrograph, its longer side at most ``size_px`` pixels.

    Row 0 of the array is at the bottom (the MRC convention myamiweb shows). Returns the written path.
    """
    from PIL import Image  # matplotlib's own image library

    path = Path(path)
    data = np.asarray(image, dtype=np.float32)
    factor = max(1, int(np.ceil(max(data.shape) / size_px)))
    small = block_mean(data, factor)
    low, high = _grey_limits(small, clip_sigma)
    scaled = np.clip((np.nan_to_num(small, nan=low) - low) / (high - low), 0.0, 1.0)
    grey = np.ascontiguousarray((scaled[::-1] * 255.0 + 0.5).astype(np.uint8))  # row 0 at the bottom
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    Image.fromarray(grey).save(tmp, format="PNG", optimize=True)  # 8-bit grey ("L"): a quarter of RGBA
    os.replace(tmp, path)
    return path


def spectrum_rings_png(spectrum: np.ndarray, path: str | os.PathLike, *, ring_phase: np.ndarray | None = None,
                       max_rings: int = 12, size_px: int = 256, clip_sigma: float = 2.5,
                       title: str | None = None) -> Path:
    """A power spectrum (origin at the centre) with the fitted CTF's zeros drawn as rings.

    Parameters
    ----------
    spectrum
        2-D spectrum, zero frequency at ``(ny // 2, nx // 2)``.
    ring_phase
        The fitted CTF's phase chi (rad) on the same grid; rings are drawn where chi = kπ,
        k = 1 .. ``max_rings``. None draws the spectrum alone.
    """
    path = Path(path)
    data = np.asarray(spectrum, dtype=np.float32)
    if data.ndim != 2:
        raise ValueError(f"spectrum_rings_png needs a 2-D spectrum, got shape {data.shape}")
    if ring_phase is not None and np.shape(ring_phase) != data.shape:
        raise ValueError(f"ring phase {np.shape(ring_phase)} does not match the spectrum {data.shape}")
    low, high = _grey_limits(data, clip_sigma)
    side = size_px / _DPI
    fig = _figure(side, side)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(data, cmap="gray", vmin=low, vmax=high, origin="lower", interpolation="bilinear")
    if ring_phase is not None:
        phase = np.asarray(ring_phase, dtype=np.float64)
        finite = phase[np.isfinite(phase)]  # NaN masks where no ring is drawn (beyond the fit resolution)
        levels = ([k * np.pi for k in range(1, max_rings + 1) if finite.min() < k * np.pi < finite.max()]
                  if finite.size else [])
        if levels:
            ax.contour(phase, levels=levels, colors="#33cc66", linewidths=1.0, alpha=0.9, origin="lower")
    if title:
        ax.text(0.02, 0.98, title, transform=ax.transAxes, va="top", ha="left", color="#ffee66", fontsize=8)
    ax.set_axis_off()
    _save(fig, path, dpi=_DPI)
    return path


def drift_trajectory_png(x_angstrom: Sequence[float], y_angstrom: Sequence[float], path: str | os.PathLike, *,
                         title: str | None = None) -> Path:
    """The frame-by-frame positions of one exposure (Å), coloured by frame, start and end marked."""
    path = Path(path)
    x, y = np.asarray(x_angstrom, dtype=np.float64), np.asarray(y_angstrom, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(f"a trajectory needs two equal 1-D sequences, got {x.shape} and {y.shape}")
    fig = _figure(3.2, 3.2)
    ax = fig.add_subplot()
    ax.plot(x, y, color="#999999", linewidth=0.8, zorder=1)
    points = ax.scatter(x, y, c=np.arange(x.size), cmap="viridis", s=14, zorder=2)
    ax.scatter(x[:1], y[:1], marker="s", s=36, facecolors="none", edgecolors="black", zorder=3, label="first frame")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    fig.colorbar(points, ax=ax, label="frame", shrink=0.8)
    ax.legend(loc="best", fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path, dpi=_DPI)
    return path


def series_png(x: Sequence[float], series: Mapping[str, Sequence[float | None]], path: str | os.PathLike, *,
               xlabel: str, ylabel: str, title: str | None = None, markers: bool = True,
               step: bool = False) -> Path:
    """One or more y(x) series on one axis (None or NaN values are gaps); a legend when there are several."""
    path = Path(path)
    xs = np.asarray(x, dtype=np.float64)
    fig = _figure(*_PLOT_SIZE_IN)
    ax = fig.add_subplot()
    for label, values in series.items():
        ys = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        if ys.shape != xs.shape:
            raise ValueError(f"series {label!r} has {ys.size} values for {xs.size} x values")
        if step:
            ax.step(xs, ys, where="post", label=label, linewidth=1.2)
        else:
            ax.plot(xs, ys, marker="o" if markers else None, markersize=3, linewidth=1, label=label)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=7, loc="best")
    if title:
        ax.set_title(title, fontsize=9)
    if xs.size == 0:
        ax.text(0.5, 0.5, "no data yet", transform=ax.transAxes, ha="center", va="center", color="#888888")
    fig.tight_layout()
    _save(fig, path, dpi=_DPI)
    return path


def histogram_png(values: Sequence[float], path: str | os.PathLike, *, xlabel: str, bins: int | Sequence[float] = 20,
                  title: str | None = None) -> Path:
    """A histogram of finite values (the count of others is noted in the title)."""
    path = Path(path)
    data = np.asarray(values, dtype=np.float64)
    finite = data[np.isfinite(data)]
    fig = _figure(*_PLOT_SIZE_IN)
    ax = fig.add_subplot()
    if finite.size:
        ax.hist(finite, bins=bins, color="#4477aa", edgecolor="white")
    else:
        ax.text(0.5, 0.5, "no data yet", transform=ax.transAxes, ha="center", va="center", color="#888888")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("exposures", fontsize=8)
    ax.tick_params(labelsize=7)
    skipped = data.size - finite.size
    label = title or ""
    if skipped:
        label = f"{label} ({skipped} without a value)".strip()
    if label:
        ax.set_title(label, fontsize=9)
    fig.tight_layout()
    _save(fig, path, dpi=_DPI)
    return path


def cached_png(cache_dir: str | os.PathLike, kind: str, object_id: int, version: str,
               render: Callable[[Path], object]) -> Path:
    """The picture ``<cache_dir>/<kind>/<object_id>-<digest of version>.png``, rendered on first use.

    ``kind`` must match :data:`CACHE_KIND_PATTERN` and ``object_id`` be a non-negative integer, so no
    name from a request ever reaches the file system. ``version`` is any string that changes when the
    picture's inputs change (row ids, counts, file times); older versions of the same picture are removed
    once the new one is in place. ``render(path)`` writes the PNG to ``path`` (a private temporary name).

    Raises
    ------
    ValueError
        If ``kind`` or ``object_id`` is not acceptable.
    """
    if not isinstance(kind, str) or not CACHE_KIND_PATTERN.match(kind):
        raise ValueError(f"bad picture kind {kind!r}")
    if isinstance(object_id, bool) or not isinstance(object_id, (int, np.integer)) or object_id < 0:
        raise ValueError(f"bad picture id {object_id!r}")
    folder = Path(cache_dir) / kind
    digest = hashlib.sha256(version.encode()).hexdigest()[:16]
    path = folder / f"{int(object_id)}-{digest}.png"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{int(object_id)}-{digest}.{os.getpid()}.{threading.get_ident()}.png"
    try:
        render(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    for old in folder.glob(f"{int(object_id)}-*.png"):
        if old != path:
            old.unlink(missing_ok=True)
    return path
