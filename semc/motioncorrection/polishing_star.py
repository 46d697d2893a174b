"""MotionCor's ``-OutStar 1``: the per-movie STAR file that RELION 4's Bayesian polishing reads.

Blocks as RELION writes them for its own motion correction (``data_general``,
``data_global_shift``; no ``data_hot_pixels``: defects are corrected, not listed). Shifts are
in unbinned movie pixels, relative to the first frame written, with RELION's sign: the
shift that aligns the frame, i.e. minus the content motion.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import starfile

from semc.motioncorrection.types import MotionCorrectionParams

__all__ = ["polishing_star_write"]


def polishing_star_write(
    path: str, *, movie: str, gain: str | None, shifts_px: np.ndarray, first_frame: int,
    movie_shape_nyx: tuple[int, int, int], params: MotionCorrectionParams,
) -> None:
    """Write the polishing STAR of one movie atomically (temporary name, then rename).

    ``shifts_px`` is (n, 2): the per-frame alignment shifts (x, y) of the processed
    frames in movie pixels, as printed in MotionCor's log.
    """
    n_frames, ny, nx = movie_shape_nyx
    general = {
        "rlnImageSizeX": int(nx),
        "rlnImageSizeY": int(ny),
        "rlnImageSizeZ": int(n_frames),
        "rlnMicrographMovieName": movie,
        "rlnMicrographBinning": float(params.output_bin),
        "rlnMicrographOriginalPixelSize": float(params.pixel_size_angstrom or 1.0),
        "rlnMicrographDoseRate": float(params.dose_per_frame_e_per_a2),
        "rlnMicrographPreExposure": float(params.initial_dose_e_per_a2),
        "rlnVoltage": float(params.voltage_kv),
        "rlnMicrographStartFrame": int(first_frame) + 1,
        "rlnMotionModelVersion": 0,
    }
    if gain:
        general["rlnMicrographGainName"] = gain
    shifts = np.asarray(shifts_px, dtype=np.float64)
    shifts = shifts - shifts[0]
    blocks: dict[str, object] = {
        "general": general,
        "global_shift": pd.DataFrame({
            "rlnMicrographFrameNumber": np.arange(first_frame + 1, first_frame + 1 + len(shifts)),
            "rlnMicrographShiftX": shifts[:, 0],
            "rlnMicrographShiftY": shifts[:, 1],
        }),
    }
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        starfile.write(blocks, tmp, overwrite=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
