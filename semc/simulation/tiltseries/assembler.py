"""Assemblers build the 3D phantom of one tilt series (the ETSimulations architecture).

Interface (what the driver calls, in each child process):

- ``set_up_tiltseries(simulation)``: place particles through
  ``simulation.add_particle(model, centre_angstrom, rotation)``, using
  ``simulation.rng`` for randomness and ``simulation.models`` (name → model);
  it may add models with ``simulation.add_model``;
- ``reset_temp_dir()``: empty this assembler's temporary folder (called before each series);
- ``close()``: remove the temporary folder (called once, when the process is done).

Assemblers are found by name: ``basic`` is built in; more are plugged in
through the entry-point group ``semc.simulation.assemblers`` (a class taking
``options`` and ``temp_dir`` keyword arguments).
"""

from __future__ import annotations

import logging
import shutil
from abc import ABC, abstractmethod
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semc.base.errors import ConfigurationError, InvalidParameters
from semc.simulation.physics.models import model_from_mmcif_text, model_from_pdb_text, random_rotations

if TYPE_CHECKING:
    from semc.simulation.tiltseries.simulation import TiltSeriesSimulation

logger = logging.getLogger(__name__)

__all__ = ["Assembler", "BasicAssembler", "ENTRY_POINT_GROUP", "assembler_create"]

ENTRY_POINT_GROUP = "semc.simulation.assemblers"


class Assembler(ABC):
    """Base class: owns one temporary folder, places particles for each tilt series."""

    def __init__(self, *, options: dict[str, Any], temp_dir: Path) -> None:
        self.options = dict(options)
        self.temp_dir = Path(temp_dir)
        self.temp_dir.mkdir(parents=True, exist_ok=True)

    @abstractmethod
    def set_up_tiltseries(self, simulation: "TiltSeriesSimulation") -> None:
        """Place the particles of one series in ``simulation``."""

    def reset_temp_dir(self) -> Path:
        """Empty the temporary folder (and recreate it); returns it."""
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        return self.temp_dir

    def close(self) -> None:
        """Remove the temporary folder."""
        shutil.rmtree(self.temp_dir, ignore_errors=True)


class BasicAssembler(Assembler):
    """Particles from the model library at uniform random positions in a slab, random orientations.

    Options: ``n_particles`` (30), ``models`` (list of names; default
    ``["globular"]``), ``slab_thickness_angstrom`` (400), ``margin_angstrom``
    (field border kept empty, default 100), ``min_separation_angstrom`` (0),
    ``pdb_files`` / ``mmcif_files`` (name → path, added to the library).
    """

    def set_up_tiltseries(self, simulation: "TiltSeriesSimulation") -> None:
        opts = self.options
        for kind, reader in (("pdb_files", model_from_pdb_text), ("mmcif_files", model_from_mmcif_text)):
            for name, path in (opts.get(kind) or {}).items():
                simulation.add_model(reader(Path(path).read_text(), name=name))
        names = list(opts.get("models", ["globular"]))
        unknown = [n for n in names if n not in simulation.models]
        if unknown:
            raise InvalidParameters(f"unknown particle models {unknown}", step="simulation")
        n = int(opts.get("n_particles", 30))
        slab = float(opts.get("slab_thickness_angstrom", 400.0))
        margin = float(opts.get("margin_angstrom", 100.0))
        min_sep = float(opts.get("min_separation_angstrom", 0.0))
        h, w = simulation.field_angstrom
        rng = simulation.rng
        rots = random_rotations(rng, n)
        placed: list[np.ndarray] = []
        for k in range(n):
            model = names[int(rng.integers(0, len(names)))]
            for _ in range(50):
                c = np.array([rng.uniform(-w / 2 + margin, w / 2 - margin),
                              rng.uniform(-h / 2 + margin, h / 2 - margin),
                              rng.uniform(-slab / 2, slab / 2)])
                if min_sep <= 0 or not placed or np.min(np.linalg.norm(np.array(placed) - c, axis=1)) >= min_sep:
                    break
            placed.append(c)
            simulation.add_particle(model, c, rots[k])
        logger.debug("basic assembler placed %d particles", n)


def assembler_create(name: str, *, options: dict[str, Any], temp_dir: Path) -> Assembler:
    """The assembler registered as ``name`` (built-in ``basic`` or an entry point).

    Raises
    ------
    ConfigurationError
        No assembler of that name, or it does not implement the interface.
    """
    if name == "basic":
        cls: Any = BasicAssembler
    else:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not found:
            raise ConfigurationError(f"no assembler named {name!r} (built in: basic; entry-point group "
                                     f"{ENTRY_POINT_GROUP})", key="assembler")
        cls = found[0].load()
    for method in ("set_up_tiltseries", "reset_temp_dir", "close"):
        if not callable(getattr(cls, method, None)):
            raise ConfigurationError(f"assembler {name!r} lacks {method}()", key="assembler")
    return cls(options=options, temp_dir=temp_dir)
