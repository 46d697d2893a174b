"""Tilt-series configuration: a YAML file read into a frozen dataclass.

Example (every key optional except ``root``)::

    name: ts
    root: /data/sim/ts            # outputs: <root>/<name>_<i>/..., <root>/sim_metadata.json, <root>/simulation.log
    n_series: 4
    processes: 2                  # child processes; each has its own assembler and temporary folder
    seed: 1
    scheme: dose-symmetric        # dose-symmetric | bidirectional | continuous
    tilt_min_degree: -60
    tilt_max_degree: 60
    tilt_step_degree: 3
    group_size: 2                 # dose-symmetric
    start_degree: 0               # bidirectional
    shape: [512, 512]             # (ny, nx)
    pixel_size_angstrom: 2.0
    dose_per_tilt_e_per_a2: 3.0
    frames_per_tilt: 8            # per-tilt movies with motion; 1 = no motion
    write_movies: true
    movie_format: tiff            # mrc | tiff
    defocus_values_angstrom: [30000, 40000]   # one per series, round-robin
    astigmatism_angstrom: 0
    astigmatism_azimuth_degree: 0
    ice_thickness_angstrom: 800
    ice_texture: 1.0              # RMS scale of the ice's density fluctuations (0: none)
    zero_loss_mean_free_path_angstrom: 0      # >0: energy filter, counts × exp(−t / (cos θ · mfp))
    slab_thickness_angstrom: 100
    optics: {voltage_kv: 300, cs_mm: 2.7, amplitude_contrast: 0.07, bfactor_angstrom2: 0}
    motion: {global_amplitude_px: 1.5, decay_frames: 3, drift_px_per_frame: 0.05, jitter_px: 0.03}
    detector: {gain_sigma: 0.0, n_hot_pixels: 0, n_dead_columns: 0, mtf: true}
    assembler: basic              # or a name registered under the entry-point group semc.simulation.assemblers
    assembler_options: {n_particles: 30, models: [apoferritin, ribosome], slab_thickness_angstrom: 500}
    given_errors: {tilt_angle_degree: 0.0, defocus_angstrom: 0.0, position_angstrom: 0.0}
    tem_simulator: {executable: null, template: null, timeout_s: 3600}
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from semc.base.errors import ConfigurationError, InvalidParameters
from semc.simulation.tiltseries.schemes import SCHEMES
from semc.simulation.types import DetectorSpec, MotionSpec, OpticsSpec

__all__ = ["TiltSeriesConfig", "tiltseries_config_from_dict", "tiltseries_config_read"]


@dataclass(frozen=True, slots=True)
class TiltSeriesConfig:
    """A tilt-series simulation run (see the module docstring for the YAML form)."""

    root: Path
    name: str = "ts"
    n_series: int = 1
    processes: int = 1
    seed: int = 0
    scheme: str = "dose-symmetric"
    tilt_min_degree: float = -60.0
    tilt_max_degree: float = 60.0
    tilt_step_degree: float = 3.0
    group_size: int = 2
    start_degree: float = 0.0
    shape: tuple[int, int] = (512, 512)
    pixel_size_angstrom: float = 2.0
    dose_per_tilt_e_per_a2: float = 3.0
    frames_per_tilt: int = 8
    write_movies: bool = True
    movie_format: str = "tiff"
    defocus_values_angstrom: tuple[float, ...] = (30000.0,)
    astigmatism_angstrom: float = 0.0
    astigmatism_azimuth_degree: float = 0.0
    ice_thickness_angstrom: float = 800.0
    ice_texture: float = 1.0
    zero_loss_mean_free_path_angstrom: float = 0.0
    slab_thickness_angstrom: float = 100.0
    optics: dict[str, Any] = field(default_factory=dict)
    motion: dict[str, Any] = field(default_factory=dict)
    detector: dict[str, Any] = field(default_factory=dict)
    assembler: str = "basic"
    assembler_options: dict[str, Any] = field(default_factory=dict)
    given_errors: dict[str, float] = field(default_factory=dict)
    tem_simulator: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        def check(ok: bool, msg: str) -> None:
            if not ok:
                raise InvalidParameters(msg, step="simulation")

        check(self.n_series >= 1 and self.processes >= 1, "n_series and processes must be >= 1")
        check(self.scheme in SCHEMES, f"scheme must be one of {SCHEMES}, got {self.scheme!r}")
        check(self.frames_per_tilt >= 1, "frames_per_tilt must be >= 1")
        check(self.movie_format in ("mrc", "tiff"), "movie_format must be mrc or tiff")
        check(len(self.defocus_values_angstrom) >= 1, "at least one defocus value")
        check(self.dose_per_tilt_e_per_a2 > 0 and self.pixel_size_angstrom > 0, "dose and pixel size must be > 0")
        check(set(self.given_errors) <= {"tilt_angle_degree", "defocus_angstrom", "position_angstrom"},
              f"unknown given_errors keys {sorted(self.given_errors)}")
        # the nested specs must build (raises InvalidParameters / TypeError early)
        self.optics_spec(0)
        self.motion_spec()
        self.detector_spec()

    def optics_spec(self, series: int) -> OpticsSpec:
        """Optics of series ``series`` (its defocus from the round-robin list)."""
        d = self.defocus_values_angstrom[series % len(self.defocus_values_angstrom)]
        return OpticsSpec(**{**self.optics, "defocus1_angstrom": d + self.astigmatism_angstrom / 2,
                             "defocus2_angstrom": d - self.astigmatism_angstrom / 2,
                             "astigmatism_azimuth_degree": self.astigmatism_azimuth_degree})

    def motion_spec(self) -> MotionSpec:
        """Beam-induced motion of every tilt movie (still when there is one frame per tilt)."""
        if self.frames_per_tilt == 1:
            return MotionSpec.still()
        return MotionSpec(**self.motion)

    def detector_spec(self) -> DetectorSpec:
        """The camera."""
        return DetectorSpec(**self.detector)


def tiltseries_config_from_dict(data: dict[str, Any], *, base_dir: Path | None = None) -> TiltSeriesConfig:
    """Build the configuration from a parsed YAML mapping; relative paths are taken from ``base_dir``.

    Raises
    ------
    ConfigurationError
        Unknown keys, a missing ``root``, or values of the wrong kind.
    """
    known = {f.name for f in fields(TiltSeriesConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigurationError(f"unknown tilt-series configuration keys {unknown}", key=unknown[0])
    if "root" not in data:
        raise ConfigurationError("the configuration needs a 'root' output folder", key="root")
    base = base_dir or Path.cwd()
    values = dict(data)
    values["root"] = (base / str(values["root"])).resolve()
    for key in ("shape", "defocus_values_angstrom"):
        if key in values:
            values[key] = tuple(values[key])
    tem = dict(values.get("tem_simulator") or {})
    if tem.get("template"):
        tem["template"] = str((base / tem["template"]).resolve())
    values["tem_simulator"] = tem
    try:
        return TiltSeriesConfig(**values)
    except TypeError as exc:
        raise ConfigurationError(f"bad tilt-series configuration: {exc}") from exc


def tiltseries_config_read(path: str | Path) -> TiltSeriesConfig:
    """Read a YAML configuration file (relative paths are relative to the file)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read tilt-series configuration: {exc}", path=str(path)) from exc
    if not isinstance(data, dict):
        raise ConfigurationError("the configuration must be a mapping", path=str(path))
    return tiltseries_config_from_dict(data, base_dir=path.parent)
