"""Small PNG/JPEG pictures for the web viewer, the admin and myamiweb: spectra with fits, 1-D CTF plots,
micrograph thumbnails. Rendered with matplotlib's Agg backend (no display), written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["image_png", "ctf_profile_png"]


def _save(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    fig.savefig(tmp, dpi=100)
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
                    max_frequency: float = 1 / 3.5) -> str:
    """The 1-D rotational average with the fitted CTF (CTFFIND's ``_avrot`` curves), up to ``max_frequency``."""
    path = Path(path)
    fig = _figure(6, 3.5)
    ax = fig.add_subplot()
    keep = (frequency_per_angstrom > 0) & (frequency_per_angstrom <= max_frequency)
    keep[0] = False
    for label, values in curves.items():
        ax.plot(frequency_per_angstrom[keep], np.asarray(values)[keep], label=label, linewidth=1)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    return path.name
