"""Cryo-ET tilt series with ground truth: schemes, assemblers, the built-in projector, a parallel driver."""

from semc.simulation.tiltseries.assembler import ENTRY_POINT_GROUP, Assembler, BasicAssembler, assembler_create
from semc.simulation.tiltseries.config import TiltSeriesConfig, tiltseries_config_from_dict, tiltseries_config_read
from semc.simulation.tiltseries.driver import series_simulate, tiltseries_run
from semc.simulation.tiltseries.schemes import SCHEMES, tilt_angles, tilted_positions
from semc.simulation.tiltseries.simulation import TiltSeriesSimulation

__all__ = [
    "Assembler", "BasicAssembler", "ENTRY_POINT_GROUP", "SCHEMES", "TiltSeriesConfig", "TiltSeriesSimulation",
    "assembler_create", "series_simulate", "tilt_angles", "tilted_positions", "tiltseries_config_from_dict",
    "tiltseries_config_read", "tiltseries_run",
]
