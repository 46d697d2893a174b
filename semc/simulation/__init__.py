"""Synthetic cryo-EM data with ground truth: movies, micrographs, sessions and cryo-ET tilt series.

Fast in-memory fixtures::

    from semc.simulation import MovieSpec, simulate_movie, simulate_micrograph
    movie = simulate_movie(MovieSpec(shape=(512, 512), n_frames=20), seed=1)
    movie.frames, movie.clean_sum, movie.truth.shifts_px   # shifts: see movie.SHIFT_CONVENTION

Files: :func:`semc.simulation.writers.movie_write`; sessions:
:mod:`semc.simulation.session`; tilt series: :mod:`semc.simulation.tiltseries`;
command line: :mod:`semc.simulation.cli`.
"""

from semc.simulation.movie import (
    SHIFT_CONVENTION,
    MovieTruth,
    SimulatedMicrograph,
    SimulatedMovie,
    movie_stream,
    simulate_micrograph,
    simulate_movie,
)
from semc.simulation.types import DetectorSpec, MotionSpec, MovieSpec, OpticsSpec, SpecimenSpec

__all__ = [
    "SHIFT_CONVENTION",
    "DetectorSpec",
    "MotionSpec",
    "MovieSpec",
    "MovieTruth",
    "OpticsSpec",
    "SimulatedMicrograph",
    "SimulatedMovie",
    "SpecimenSpec",
    "movie_stream",
    "simulate_micrograph",
    "simulate_movie",
]
