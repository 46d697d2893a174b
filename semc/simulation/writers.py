"""Write simulated exposures to disk: movie, clean reference sum, gain, defects, ground-truth JSON.

File names follow Leginon's layout: the movie is ``<name>.frames.<ext>``
(``mrc``, ``tif`` or ``eer``); beside it ``<name>.truth.json``,
``<name>.clean.mrc`` (the clean reference sum), and, unless shared files are
given, ``<name>.gain.mrc`` (multiplicative gain reference), ``<name>.defects.txt``
(MotionCor ``x y w h`` rectangles) and ``<name>.defects.mrc`` (0/1 map).
All writes go through :mod:`semc.base.io` (atomic: temporary name, then rename).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
from semc.base.errors import InvalidParameters
from semc.base.io import write_eer, write_mrc, write_tiff_movie
from semc.simulation.eer_events import eer_events_simulate
from semc.simulation.movie import MovieTruth, movie_stream
from semc.simulation.physics.detector import DetectorState, defect_mask
from semc.simulation.physics.models import DensityModel
from semc.simulation.truth import json_write
from semc.simulation.types import MovieSpec

logger = logging.getLogger(__name__)

__all__ = ["ExposureFiles", "movie_write", "camera_references_write", "defects_text", "mrc_write_reproducible",
           "FORMATS"]

#: format name -> movie suffix (Leginon rawtransfer names)
FORMATS = {"mrc": ".frames.mrc", "tiff": ".frames.tif", "eer": ".frames.eer"}


@dataclass(frozen=True, slots=True)
class ExposureFiles:
    """Paths written for one exposure."""

    movie: Path
    truth: Path
    clean_sum: Path
    gain: Path
    defects_text: Path
    defects_map: Path


def defects_text(state: DetectorState, shape: tuple[int, int]) -> str:
    """MotionCor ``-DefectFile`` text: one ``x y w h`` rectangle per dead column and hot pixel."""
    ny, _ = shape
    lines = [f"{c} 0 1 {ny}" for c in state.dead_columns]
    lines += [f"{x} {y} 1 1" for x, y in state.hot_pixels_xy]
    return "".join(line + "\n" for line in lines)


def mrc_write_reproducible(path: Path, data, *, pixel_size_angstrom: float, label: str) -> None:
    """write_mrc, then replace mrcfile's time-stamped label so the same seed gives the same bytes."""
    write_mrc(path, data, pixel_size_angstrom=pixel_size_angstrom)
    with mrcfile.open(path, mode="r+") as mrc:
        mrc.header.label[0] = label[:80].encode("ascii", "replace")
        mrc.header.nlabl = 1


def camera_references_write(
    state: DetectorState, shape: tuple[int, int], *, gain_path: Path, defects_path: Path, defect_map_path: Path,
    pixel_size_angstrom: float,
) -> None:
    """Write the gain reference (float32 MRC), the defect text and the defect map (MRC)."""
    mrc_write_reproducible(gain_path, state.gain_reference, pixel_size_angstrom=pixel_size_angstrom,
               label="semc.simulation gain reference (multiplicative)")
    tmp = defects_path.with_name(defects_path.name + ".tmp")
    tmp.write_text(defects_text(state, shape))
    tmp.replace(defects_path)
    mrc_write_reproducible(defect_map_path, defect_mask(state, shape).astype(np.int8), pixel_size_angstrom=pixel_size_angstrom,
               label="semc.simulation defect map (1 = bad)")


class _Tap:
    """Pass frames through, summing them (the integrated image) and optionally clipping to uint8."""

    def __init__(self, frames, shape: tuple[int, int], *, to_uint8: bool = False, events: bool = False):
        self.frames, self.to_uint8, self.events = frames, to_uint8, events
        self.clipped = 0
        self.total = np.zeros(shape[0] * shape[1] if events else shape, dtype=np.float64)
        self.nx = shape[1]

    def __iter__(self):
        for f in self.frames:
            if self.events:  # (x, y) on the 16K grid
                x, y = f
                self.total += np.bincount((y >> 2) * self.nx + (x >> 2), minlength=self.total.size)
            else:
                self.total += f
                if self.to_uint8:
                    self.clipped += int((f > 255).sum())
                    f = np.minimum(f, 255).astype(np.uint8)
            yield f


class _FrameList(list):
    """A lazy frame sequence of known length for writers that want ``len()`` first."""

    def __init__(self, n: int, iterator) -> None:
        super().__init__()
        self._n, self._it = n, iterator

    def __len__(self) -> int:
        return self._n

    def __bool__(self) -> bool:
        return self._n > 0

    def __iter__(self):
        return iter(self._it)


def _paths(directory: Path, name: str, fmt: str, shared: dict[str, Path] | None) -> ExposureFiles:
    shared = shared or {}
    return ExposureFiles(
        movie=directory / f"{name}{FORMATS[fmt]}",
        truth=directory / f"{name}.truth.json",
        clean_sum=directory / f"{name}.clean.mrc",
        gain=shared.get("gain", directory / f"{name}.gain.mrc"),
        defects_text=shared.get("defects_text", directory / f"{name}.defects.txt"),
        defects_map=shared.get("defects_map", directory / f"{name}.defects.mrc"),
    )


def movie_write(
    spec: MovieSpec,
    seed: int,
    *,
    directory: str | Path,
    name: str,
    fmt: str = "tiff",
    models: dict[str, DensityModel] | None = None,
    camera_seed: int | None = None,
    shared_references: dict[str, Path] | None = None,
    eer_raw_frames_per_fraction: int = 20,
    image_sum_path: str | Path | None = None,
) -> ExposureFiles:
    """Simulate one movie and write it with its truth, clean sum and camera references.

    Parameters
    ----------
    spec, seed, models, camera_seed
        As for :func:`semc.simulation.movie.simulate_movie`.
    directory, name
        Where, and the Leginon ``filename`` (the movie is ``<name>.frames.<ext>``).
    fmt
        ``mrc`` (uint16/uint8 counts), ``tiff`` (LZW uint8, values clipped at 255
        and counted in the truth) or ``eer`` (65001, 4K grid + 2 + 2 sub-pixel bits;
        ``spec.n_frames`` detector frames).
    shared_references
        Existing ``gain`` / ``defects_text`` / ``defects_map`` paths (a session's
        camera); these files are then not written again.
    image_sum_path
        Where to write the integrated, gain-corrected image (float32 MRC), as
        Leginon saves beside the movie; not written when None.

    Returns
    -------
    ExposureFiles

    Raises
    ------
    InvalidParameters
        Unknown format.
    """
    if fmt not in FORMATS:
        raise InvalidParameters(f"format must be one of {sorted(FORMATS)}, got {fmt!r}", step="simulation")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = _paths(directory, name, fmt, shared_references)
    extra: dict = {}
    pix = spec.pixel_size_angstrom
    if fmt == "eer":
        ev = eer_events_simulate(spec, seed, raw_frames_per_fraction=eer_raw_frames_per_fraction,
                                 models=models, camera_seed=camera_seed)
        truth, clean = ev.truth, ev.clean_sum
        tap = _Tap(ev.frames, spec.shape, events=True)
        write_eer(files.movie, _FrameList(spec.n_frames, tap), sensor_shape=spec.shape,
                  pixel_size_angstrom=pix, metadata={"totalDose": f"{spec.n_frames * spec.dose_per_frame_e_per_a2:.4f}"})
        extra = {"eer_raw_frames_per_fraction": eer_raw_frames_per_fraction,
                 "eer_coincidence_lost_events": ev.lost_events[0],
                 "eer_subpixel": "2+2 bits, uniform inside the sensor pixel; positions on the 16K grid"}
    else:
        truth, clean, frames = movie_stream(spec, seed, models=models, camera_seed=camera_seed)
        tap = _Tap(frames, spec.shape, to_uint8=fmt == "tiff")
        if fmt == "tiff":
            write_tiff_movie(files.movie, tap, compression="lzw", pixel_size_angstrom=pix)
            extra = {"tiff_values_clipped_at_255": tap.clipped}
        else:
            mrc_write_reproducible(files.movie, np.stack(list(tap)), pixel_size_angstrom=pix,
                                   label=f"semc.simulation movie seed={seed}")
    if image_sum_path is not None:
        image = (tap.total.reshape(spec.shape) * truth.detector.gain_reference).astype(np.float32)
        Path(image_sum_path).parent.mkdir(parents=True, exist_ok=True)
        mrc_write_reproducible(Path(image_sum_path), image, pixel_size_angstrom=pix,
                               label=f"semc.simulation integrated image seed={seed}")
        extra["integrated_image"] = os.path.relpath(image_sum_path, files.truth.parent)
    mrc_write_reproducible(files.clean_sum, clean, pixel_size_angstrom=pix, label=f"semc.simulation clean reference sum seed={seed}")
    if not shared_references:
        camera_references_write(truth.detector, spec.shape, gain_path=files.gain, defects_path=files.defects_text,
                                defect_map_path=files.defects_map, pixel_size_angstrom=pix)
    _truth_write(truth, files, fmt, extra)
    logger.info("simulated exposure=%s format=%s frames=%d", name, fmt, spec.n_frames)
    return files


def _truth_write(truth: MovieTruth, files: ExposureFiles, fmt: str, extra: dict) -> None:
    base = files.truth.parent

    def rel(p: Path) -> str:  # relative to the truth file, so a moved folder stays valid
        return os.path.relpath(p, base)

    data = truth.to_json_dict(movie=rel(files.movie), clean_reference_sum=rel(files.clean_sum),
                              gain_reference=rel(files.gain), defects_text=rel(files.defects_text),
                              defect_map=rel(files.defects_map))
    data["paths_relative_to"] = "the folder of this truth file"
    data["format_written"] = fmt
    data.update(extra)
    json_write(files.truth, data)

