"""Movie and image I/O: MRC, TIFF and EER readers with one interface, writers,
detector corrections, Fourier cropping and readiness checks.

Everything here is below the ORM and the cluster: plain paths and arrays in,
arrays and frozen dataclasses out, errors from :mod:`semc.base.errors`
(``CorruptInput`` names the path and the frame).
"""

from semc.base.io.corrections import (
    DetectorCorrection,
    defect_mask_from_correctorplan,
    defect_mask_from_image,
    defect_mask_from_motioncor_file,
    load_gain,
    orient_gain,
    resample_gain,
)
from semc.base.io.eer import EerMovie, write_eer
from semc.base.io.eer_codec import EerCoding, eer_decode_frame, eer_encode_frame
from semc.base.io.fourier import fourier_bin, fourier_crop, fourier_pad, fourier_resize
from semc.base.io.grouping import FrameGrouping
from semc.base.io.movie import movie_format, open_movie, read_image
from semc.base.io.mrc import MrcMovie, write_mrc
from semc.base.io.readiness import Readiness, movie_readiness
from semc.base.io.reader import MovieReader
from semc.base.io.tiff import TiffMovie, write_tiff_movie

__all__ = [
    "DetectorCorrection",
    "Readiness",
    "defect_mask_from_correctorplan",
    "defect_mask_from_image",
    "defect_mask_from_motioncor_file",
    "fourier_bin",
    "fourier_crop",
    "fourier_pad",
    "fourier_resize",
    "load_gain",
    "movie_readiness",
    "orient_gain",
    "resample_gain",
    "EerCoding",
    "EerMovie",
    "eer_decode_frame",
    "eer_encode_frame",
    "write_eer",
    "FrameGrouping",
    "MovieReader",
    "MrcMovie",
    "TiffMovie",
    "movie_format",
    "open_movie",
    "read_image",
    "write_mrc",
    "write_tiff_movie",
]
