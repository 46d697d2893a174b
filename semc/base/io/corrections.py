"""Detector corrections on the fly: gain (multiplicative), dark, orientation, defects.

Orientation (gain -> frame geometry), in numpy array terms (row 0 = first row in the file):

- MotionCor ``-RotGain r -FlipGain f`` (algorithms.md §1.1): rotate first, then flip.
  ``RotGain r`` is r quarter turns "counter-clockwise" as MotionCor displays images
  (y up), which is DigitalMicrograph's "Rotate Right" and RELION's ``--gain_rot``
  ("90° clockwise in relion_display", algorithms.md §2.2): ``np.rot90(gain, -r)``.
  ``FlipGain 1`` is upside-down (rows reversed), ``2`` left-right (columns reversed).
- Leginon ``frame rotate`` r / ``frame flip`` (bool), appion-compat §3.3 and §5.5:
  Appion passes them unchanged as ``-RotGain``/``-FlipGain`` and orients its defect
  map "like the frames" with ``np.rot90(map, 4 - r)`` then an up-down flip when
  flipped; that is the same array operation, so both conventions give one result
  for the same numbers, and Leginon's flip can only be up-down.

Defects are filled as MotionCor and RELION do: each bad pixel takes the value of a
random good pixel within ±2 px (widening to ±4, then ±8, when none is good), drawn
from an RNG seeded by ``(seed, frame_index)`` so a run is reproducible. Pixels
where the gain is 0 or not finite are bad too (RELION).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from semc.base.errors import CorruptInput, InvalidParameters
from semc.base.io.movie import movie_format, read_image

__all__ = [
    "orient_gain",
    "load_gain",
    "resample_gain",
    "defect_mask_from_correctorplan",
    "defect_mask_from_motioncor_file",
    "defect_mask_from_image",
    "DetectorCorrection",
]

logger = logging.getLogger(__name__)

_FILL_RADII = (2, 4, 8)


def orient_gain(gain: NDArray, *, rotate_90: int = 0, flip: int = 0, convention: str = "motioncor") -> NDArray:
    """Rotate then flip a reference (gain, dark, defect map) into the frames' geometry.

    Parameters
    ----------
    gain
        ``(ny, nx)`` reference.
    rotate_90
        MotionCor ``-RotGain`` / Leginon ``frame rotate``: 0..3 quarter turns (see module doc).
    flip
        MotionCor ``-FlipGain``: 0 none, 1 upside-down, 2 left-right; Leginon ``frame flip``:
        0/1 (False/True, up-down).
    convention
        ``"motioncor"`` or ``"leginon"``.

    Returns
    -------
    numpy.ndarray
        A C-contiguous oriented copy, same dtype.

    Raises
    ------
    InvalidParameters
        Values outside the convention's range, or not 2-D.
    """
    if convention not in ("motioncor", "leginon"):
        raise InvalidParameters(f"convention must be motioncor or leginon, got {convention!r}", step="io")
    allowed_flips = (0, 1, 2) if convention == "motioncor" else (0, 1, False, True)
    if int(rotate_90) not in (0, 1, 2, 3) or flip not in allowed_flips:
        raise InvalidParameters(
            f"{convention} orientation needs rotate 0..3 and flip in {allowed_flips}, got {rotate_90}, {flip}",
            step="io",
        )
    gain = np.asarray(gain)
    if gain.ndim != 2:
        raise InvalidParameters(f"a reference must be 2-D, got {gain.shape}", step="io")
    out = np.rot90(gain, -int(rotate_90))
    if int(flip) == 1:
        out = out[::-1, :]
    elif int(flip) == 2:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def resample_gain(gain: NDArray, shape: tuple[int, int]) -> NDArray[np.float32]:
    """A multiplicative gain at another integer scale (EER 4K <-> 8K <-> 16K).

    Up: each pixel repeated (a sub-pixel has its sensor pixel's gain). Down: block mean.

    Raises
    ------
    InvalidParameters
        When the two shapes are not related by one integer factor.
    """
    gain = np.asarray(gain, dtype=np.float32)
    (gy, gx), (ty, tx) = gain.shape, tuple(shape)
    if (gy, gx) == (ty, tx):
        return gain
    if ty % gy == 0 and tx % gx == 0 and ty // gy == tx // gx:
        f = ty // gy
        return np.ascontiguousarray(np.repeat(np.repeat(gain, f, axis=0), f, axis=1))
    if gy % ty == 0 and gx % tx == 0 and gy // ty == gx // tx:
        f = gy // ty
        return gain.reshape(ty, f, tx, f).mean(axis=(1, 3), dtype=np.float32)
    raise InvalidParameters(f"gain {gain.shape} cannot be scaled to {tuple(shape)}", step="io")


def load_gain(path: str | os.PathLike[str], *, convention: str = "auto", movie_kind: str | None = None,
              shape: tuple[int, int] | None = None) -> NDArray[np.float32]:
    """Read a gain reference as a multiplicative float32 image.

    Parameters
    ----------
    path
        MRC or TIFF (``.gain``) reference.
    convention
        ``"multiply"`` (K2/K3 and EER ``.gain`` TIFF), ``"divide"`` (EER MRC gain: RELION
        uses mean/gain), or ``"auto"``: divide for an MRC gain of an EER movie
        (``movie_kind="eer"``), else multiply (algorithms.md §2.3).
    movie_kind
        ``"mrc"``, ``"tiff"`` or ``"eer"``, for ``"auto"``.
    shape
        Rendered frame shape to scale the gain to (EER 8K/16K), see :func:`resample_gain`.

    Returns
    -------
    numpy.ndarray
        ``(ny, nx)`` float32; 0 where the reference marks a dead pixel (0 or not finite).

    Raises
    ------
    InputMissing, CorruptInput
        No file, or an unreadable one.
    InvalidParameters
        Unknown convention or a shape that does not match.
    """
    if convention not in ("auto", "multiply", "divide"):
        raise InvalidParameters(f"gain convention must be auto, multiply or divide, got {convention!r}", step="io")
    kind = movie_format(path)
    if convention == "auto":
        convention = "divide" if (movie_kind == "eer" and kind == "mrc") else "multiply"
    data, _ = read_image(path)
    gain = np.asarray(data, dtype=np.float32)
    good = np.isfinite(gain) & (gain > 0)
    if not good.any():
        raise CorruptInput("gain reference has no positive value", step="io", path=os.fspath(path))
    if convention == "divide":
        mean = float(gain[good].mean(dtype=np.float64))
        gain = np.where(good, mean / np.where(good, gain, 1.0), 0.0).astype(np.float32)
    else:
        gain = np.where(good, gain, 0.0).astype(np.float32)
    return resample_gain(gain, shape) if shape is not None else gain


def defect_mask_from_correctorplan(shape: tuple[int, int], bad_rows=(), bad_cols=(), bad_pixels=()) -> NDArray[np.bool_]:
    """Defect mask from Leginon's CorrectorPlanData (rows = y, columns = x; pixels as (x, y)).

    Raises
    ------
    InvalidParameters
        A row, column or pixel outside ``shape``.
    """
    ny, nx = (int(s) for s in shape)
    mask = np.zeros((ny, nx), dtype=bool)
    rows = np.asarray(list(bad_rows), dtype=np.int64)
    cols = np.asarray(list(bad_cols), dtype=np.int64)
    pix = np.asarray(list(bad_pixels), dtype=np.int64).reshape(-1, 2)
    if (rows.size and (rows.min() < 0 or rows.max() >= ny)) or (cols.size and (cols.min() < 0 or cols.max() >= nx)):
        raise InvalidParameters(f"bad rows/columns outside the {nx}x{ny} camera", step="io")
    if pix.size and (pix[:, 0].min() < 0 or pix[:, 0].max() >= nx or pix[:, 1].min() < 0 or pix[:, 1].max() >= ny):
        raise InvalidParameters(f"bad pixels outside the {nx}x{ny} camera", step="io")
    mask[rows, :] = True
    mask[:, cols] = True
    mask[pix[:, 1], pix[:, 0]] = True
    return mask


def defect_mask_from_motioncor_file(path: str | os.PathLike[str], shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Defect mask from a MotionCor ``-DefectFile``: one ``x y w h`` rectangle per line (clipped to the frame).

    Raises
    ------
    InputMissing
        No file.
    CorruptInput
        A line that is not four integers.
    """
    path = os.fspath(path)
    ny, nx = (int(s) for s in shape)
    mask = np.zeros((ny, nx), dtype=bool)
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        from semc.base.errors import InputMissing

        raise InputMissing("defect file not found", step="io", path=path) from None
    for lineno, line in enumerate(lines, 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        try:
            x, y, w, h = (int(float(v)) for v in fields[:4])
            if len(fields) != 4 or w < 0 or h < 0:
                raise ValueError
        except ValueError:
            raise CorruptInput(f"defect file line {lineno} is not 'x y w h': {line!r}", step="io",
                               path=path) from None
        mask[max(0, y):max(0, y + h), max(0, x):max(0, x + w)] = True
    return mask


def defect_mask_from_image(path: str | os.PathLike[str]) -> NDArray[np.bool_]:
    """Defect mask from a map image (non-zero = bad; a clip-made 128/129 map is read with ``& 1``)."""
    data, _ = read_image(path)
    if data.dtype.kind in "iu" and data.size and int(data.max()) > 1:
        return (data.astype(np.int64) & 1).astype(bool)
    return np.asarray(data != 0)


def _fill_table(mask: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Linear index of each bad pixel, its good neighbours (padded with -1) and their count."""
    ny, nx = mask.shape
    bad = np.flatnonzero(mask)
    by, bx = np.divmod(bad, nx)
    cand = np.full((bad.size, 0), -1, dtype=np.int64)
    count = np.zeros(bad.size, dtype=np.int64)
    todo = np.ones(bad.size, dtype=bool)
    for radius in _FILL_RADII:
        offs = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1) if dy or dx]
        idx = np.flatnonzero(todo)
        table = np.full((idx.size, len(offs)), -1, dtype=np.int64)
        for k, (dy, dx) in enumerate(offs):
            y, x = by[idx] + dy, bx[idx] + dx
            inside = (y >= 0) & (y < ny) & (x >= 0) & (x < nx)
            lin = np.where(inside, y * nx + x, 0)
            ok = inside & ~mask.ravel()[lin]
            table[:, k] = np.where(ok, lin, -1)
        order = np.argsort(table < 0, axis=1, kind="stable")  # good candidates first
        table = np.take_along_axis(table, order, axis=1)
        n_good = (table >= 0).sum(axis=1)
        if cand.shape[1] < table.shape[1]:
            cand = np.pad(cand, ((0, 0), (0, table.shape[1] - cand.shape[1])), constant_values=-1)
        cand[idx, : table.shape[1]] = table
        count[idx] = n_good
        todo[idx] = n_good == 0
        if not todo.any():
            break
    return bad, cand, count


@dataclass(frozen=True, slots=True, eq=False)  # arrays: identity equality, no hash of big data
class DetectorCorrection:
    """Gain, dark and defects, applied to frames or group sums in float32.

    Parameters
    ----------
    gain
        Multiplicative ``(ny, nx)`` gain, already oriented, or None.
    dark
        Per-raw-frame dark ``(ny, nx)``, subtracted ``n_raw_frames`` times, or None.
    defect_mask
        ``(ny, nx)`` bool, True = bad, or None.
    seed
        Seed of the defect-fill RNG.
    """

    gain: NDArray[np.float32] | None = None
    dark: NDArray[np.float32] | None = None
    defect_mask: NDArray[np.bool_] | None = None
    seed: int = 0
    _fill: tuple = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        shapes = {a.shape for a in (self.gain, self.dark, self.defect_mask) if a is not None}
        if len(shapes) > 1:
            raise InvalidParameters(f"gain, dark and defect shapes differ: {sorted(shapes)}", step="io")
        if any(a is not None and np.ndim(a) != 2 for a in (self.gain, self.dark, self.defect_mask)):
            raise InvalidParameters("gain, dark and defect mask must be 2-D", step="io")
        if self.gain is not None:
            object.__setattr__(self, "gain", np.ascontiguousarray(self.gain, dtype=np.float32))
        if self.dark is not None:
            object.__setattr__(self, "dark", np.ascontiguousarray(self.dark, dtype=np.float32))
        mask = None if self.defect_mask is None else np.asarray(self.defect_mask, dtype=bool)
        if self.gain is not None:
            dead = ~(np.isfinite(self.gain) & (self.gain > 0))
            mask = dead if mask is None else (mask | dead)
        object.__setattr__(self, "defect_mask", mask)
        if mask is not None and mask.any():
            object.__setattr__(self, "_fill", _fill_table(mask))

    @property
    def shape(self) -> tuple[int, int] | None:
        """Frame shape the references have, or None when there is none."""
        for a in (self.gain, self.dark, self.defect_mask):
            if a is not None:
                return a.shape  # type: ignore[return-value]
        return None

    def apply(self, frame: NDArray, n_raw_frames: int = 1, *, frame_index: int = 0) -> NDArray[np.float32]:
        """Corrected float32 copy: ``(frame - n_raw_frames * dark) * gain``, defects filled.

        Parameters
        ----------
        frame
            ``(ny, nx)`` raw frame or sum of ``n_raw_frames`` raw frames.
        n_raw_frames
            Raw frames in ``frame`` (scales the dark).
        frame_index
            Seeds the defect fill together with :attr:`seed`.

        Raises
        ------
        InvalidParameters
            A frame whose shape differs from the references.
        """
        out = np.array(frame, dtype=np.float32, copy=True)
        shape = self.shape
        if shape is not None and out.shape != shape:
            raise InvalidParameters(f"frame {out.shape} does not match references {shape}", step="io")
        if self.dark is not None:
            out -= np.float32(n_raw_frames) * self.dark
        if self.gain is not None:
            out *= self.gain
        if self._fill:
            bad, cand, count = self._fill
            flat = out.reshape(-1)
            rng = np.random.default_rng((int(self.seed), int(frame_index)))
            pick = (rng.random(bad.size) * np.maximum(count, 1)).astype(np.int64)
            src = cand[np.arange(bad.size), pick]
            fallback = np.float32(0.0)
            if not count.all():  # isolated in a large bad area: the mean of the good pixels
                good = ~self.defect_mask.reshape(-1)
                fallback = np.float32(flat[good].mean()) if good.any() else fallback
            flat[bad] = np.where(count > 0, flat[np.maximum(src, 0)], fallback)
        return out
