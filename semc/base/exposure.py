"""What a worker needs to know about one exposure: plain values, no ORM (crosses Dask by pickle)."""

from __future__ import annotations

from dataclasses import dataclass, field

from semc.base.errors import InvalidParameters

__all__ = ["DefectPlan", "ExposureInputs"]


@dataclass(frozen=True, slots=True)
class DefectPlan:
    """Bad rows, columns and (x, y) pixels of a camera configuration (CorrectorPlanData)."""

    bad_rows: tuple[int, ...] = ()
    bad_cols: tuple[int, ...] = ()
    bad_pixels: tuple[tuple[int, int], ...] = ()
    plan_id: int | None = None

    @property
    def empty(self) -> bool:
        return not (self.bad_rows or self.bad_cols or self.bad_pixels)


@dataclass(frozen=True, slots=True)
class ExposureInputs:
    """One raw exposure and everything its processing reads, resolved from the Leginon rows.

    Units: Å, kV, mm, e/Å², ms. ``movie_path`` may not exist yet (still being transferred):
    the worker checks readiness and the controller defers.
    """

    exposure_id: int
    session_id: int
    session_name: str
    filename: str
    preset_name: str | None
    movie_path: str
    image_path: str  # the session's image path (where aligned images go)
    pixel_size_angstrom: float
    voltage_kv: float
    cs_mm: float
    n_frames: int
    dose_per_frame_e_per_a2: float | None
    total_dose_e_per_a2: float | None
    frame_time_ms: float | None
    camera_name: str
    frame_rotate: int = 0
    frame_flip: bool = False
    eer: bool = False
    gain_path: str | None = None
    dark_path: str | None = None
    dark_n_frames: int | None = None
    defects: DefectPlan = field(default_factory=DefectPlan)
    nominal_defocus_angstrom: float | None = None
    stage_alpha_deg: float = 0.0
    camera_id: int | None = None
    scope_id: int | None = None
    preset_id: int | None = None
    arrived_at_epoch_s: float | None = None
    camera_dimensions: tuple[int, int] | None = None  # (x, y) pixels of the raw frames, from CameraEMData

    def __post_init__(self) -> None:
        if not self.pixel_size_angstrom > 0:
            raise InvalidParameters(f"pixel size must be positive, got {self.pixel_size_angstrom}",
                                    exposure_id=self.exposure_id)
        if not self.voltage_kv > 0:
            raise InvalidParameters(f"voltage must be positive, got {self.voltage_kv}", exposure_id=self.exposure_id)
        if self.n_frames < 1:
            raise InvalidParameters(f"frame count must be >= 1, got {self.n_frames}", exposure_id=self.exposure_id)
        if self.frame_rotate not in (0, 1, 2, 3):
            raise InvalidParameters(f"frame rotate must be 0..3, got {self.frame_rotate}",
                                    exposure_id=self.exposure_id)
