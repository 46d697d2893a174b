"""Classic ``ctffind4.py`` input rules and ApCtfData validity checks (pure; compat §5.6).

`ctffind_params_from_classic` turns the classic command-line options (units as
typed: µm for ``--defstep``/``--dast``/``--nominal``, degrees for phase shifts)
plus the best previous CTF of the image into the answers CTFFIND is given;
`apctfdata_validity_problems` lists what classic's ``validateAndInsertCTFData``
warns about (it still inserts, but skips image generation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from semc.base.errors import InvalidParameters
from semc.ctfestimation.calc.external import CtfDataValues, CtffindParams, ctffind_search_range

__all__ = ["ClassicCtffindOptions", "PreviousCtf", "apctfdata_validity_problems", "ctffind_params_from_classic"]

_STEP = "ctfestimation"


@dataclass(frozen=True, slots=True)
class ClassicCtffindOptions:
    """``ctffind4.py`` options with their classic meaning (compat §4.3).

    Defaults are the myamiweb form's (resmax 4 Å, defstep 0.1 µm, dast 0.05 µm): the
    script's own argparse defaults (15 Å, 1000 µm, 100 µm) fail its own range checks.
    """

    ampcontrast: float = 0.07
    fieldsize: int = 1024
    resmin_angstrom: float = 50.0
    resmax_angstrom: float = 4.0
    defstep_um: float = 0.1
    numstep: int = 25
    dast_um: float = 0.05
    nominal_um: float | None = None
    bestdb: bool = False
    exhaust: bool = False
    phaseplate: bool = False
    min_phase_shift_deg: float = 10.0
    max_phase_shift_deg: float = 170.0
    phase_search_step_deg: float = 10.0
    num_frame_avg: int | None = None

    def __post_init__(self) -> None:
        if not 10 <= self.resmin_angstrom <= 50:
            raise InvalidParameters(f"--resmin must be 10–50 Å, got {self.resmin_angstrom}", step=_STEP)
        if not (self.resmax_angstrom <= 15 and self.resmax_angstrom < self.resmin_angstrom):
            raise InvalidParameters(f"--resmax must be <= 15 Å and < --resmin, got {self.resmax_angstrom}",
                                    step=_STEP)
        if not 0.0001 <= self.defstep_um <= 2:
            raise InvalidParameters(f"--defstep must be 0.0001–2 µm, got {self.defstep_um}", step=_STEP)
        if self.bestdb and self.nominal_um is not None:
            raise InvalidParameters("--bestdb and --nominal are mutually exclusive", step=_STEP)


@dataclass(frozen=True, slots=True)
class PreviousCtf:
    """The best previous ApCtfData row of the image (best by res80), as stored (metres, Å)."""

    defocus1_m: float
    defocus2_m: float
    amplitude_contrast: float | None = None
    resolution_80_percent: float | None = None
    resolution_50_percent: float | None = None


def _start_defocus_angstrom(options: ClassicCtffindOptions, previous: PreviousCtf | None,
                            scope_defocus_m: float | None) -> float:
    if options.nominal_um is not None:
        return abs(options.nominal_um) * 1e4
    if previous is not None:
        return min(previous.defocus1_m, previous.defocus2_m) * 1e10
    if scope_defocus_m is None:
        raise InvalidParameters("no start defocus: no --nominal, no previous CTF and no scope defocus", step=_STEP)
    return abs(scope_defocus_m) * 1e10


def ctffind_params_from_classic(*, input_path: str, diagnostic_path: str, pixel_size_angstrom: float,
                                voltage_kv: float, cs_mm: float, options: ClassicCtffindOptions,
                                previous: PreviousCtf | None = None,
                                scope_defocus_m: float | None = None) -> tuple[CtffindParams, float]:
    """CTFFIND answers from classic options: returns (params, start defocus in Å for ``defocusinit``).

    Start defocus: ``--nominal`` × 1e4, else the smaller previous defocus × 1e10,
    else |scope defocus| × 1e10. Search range: `ctffind_search_range`. With
    ``--bestdb`` and a previous CTF: its amplitude contrast (if > 0), its
    astigmatism |def1 − def2| × 1e10 (``--dast`` if < 10 Å), and resmax =
    geometric mean of (res80, res50, resmax) when that is < 0.9 × resmin.
    """
    o = options
    start = _start_defocus_angstrom(o, previous, scope_defocus_m)
    low, high, step = ctffind_search_range(start_defocus_angstrom=start, defocus_step_um=o.defstep_um,
                                           n_steps=o.numstep)
    ampcontrast, astig, resmax = o.ampcontrast, o.dast_um * 1e4, o.resmax_angstrom
    if o.bestdb and previous is not None:
        if previous.amplitude_contrast and previous.amplitude_contrast > 0:
            ampcontrast = previous.amplitude_contrast
        measured = abs(previous.defocus1_m - previous.defocus2_m) * 1e10
        astig = measured if measured >= 10 else astig
        if previous.resolution_80_percent and previous.resolution_50_percent:
            mean = (previous.resolution_80_percent * previous.resolution_50_percent * o.resmax_angstrom) ** (1 / 3)
            resmax = mean if mean < 0.9 * o.resmin_angstrom else resmax
    params = CtffindParams(
        input_path=input_path, diagnostic_path=diagnostic_path, pixel_size_angstrom=pixel_size_angstrom,
        voltage_kv=voltage_kv, cs_mm=cs_mm, amplitude_contrast=ampcontrast, box_size_px=o.fieldsize,
        resolution_min_angstrom=o.resmin_angstrom, resolution_max_angstrom=resmax, defocus_min_angstrom=low,
        defocus_max_angstrom=high, defocus_step_angstrom=step, expected_astigmatism_angstrom=astig,
        exhaustive_search=o.exhaust, phase_shift=o.phaseplate, phase_shift_min_deg=o.min_phase_shift_deg,
        phase_shift_max_deg=o.max_phase_shift_deg, phase_shift_step_deg=o.phase_search_step_deg,
        movie_frames_to_average=o.num_frame_avg,
    )
    return params, start


def apctfdata_validity_problems(values: CtfDataValues, *, voltage_kv: float) -> tuple[str, ...]:
    """What classic's validity check warns about: defocus outside 0.01–25 µm, Cs outside 0–9 mm,
    kV outside 60–400, amplitude contrast outside 0–0.5. Empty when valid."""
    problems = []
    for name in ("defocus1", "defocus2"):
        value_um = abs(getattr(values, name)) * 1e6
        if not (math.isfinite(value_um) and 0.01 <= value_um <= 25):
            problems.append(f"{name} {value_um:.3f} µm outside 0.01–25 µm")
    if not 0 <= values.cs <= 9:
        problems.append(f"cs {values.cs} mm outside 0–9 mm")
    if not 60 <= voltage_kv <= 400:
        problems.append(f"voltage {voltage_kv} kV outside 60–400 kV")
    if not 0 <= values.amplitude_contrast <= 0.5:
        problems.append(f"amplitude contrast {values.amplitude_contrast} outside 0–0.5")
    return tuple(problems)
