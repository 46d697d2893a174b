"""CTFFIND4 / CTFFIND5 as external engines: prompt tables, output parsers, ApCtfData mapping (pure).

Protocol and mapping are classic Appion's ``ctffind4.py`` / ``ctffind5.py``
(compat §5.6). The mapping into ApCtfData is [C]'s, not [S]'s swapped one
(D11): CTFFIND's column 3 becomes ``defocus1`` and column 2 ``defocus2``, the
angle is the azimuth + 90°, then ``convertDefociToConvention`` normalises
(metres, |defocus1| ≤ |defocus2|, angle in (−90, 90]). Gctf (command builder,
log and ``.star`` parsers) is in `semc.ctfestimation.calc.external_gctf`.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import numpy as np

from semc.base.errors import InvalidParameters, LogParseError, UnsupportedVersion
from semc.base.external import PromptAnswer, PromptTable

__all__ = [
    "RESOLUTION_INFINITY_ANGSTROM",
    "AvrotCurves",
    "CtfDataValues",
    "CtffindParams",
    "CtffindResult",
    "CtffindVersion",
    "apctfdata_values_from_ctffind",
    "ctffind_avrot_parse",
    "ctffind_params_from_search",
    "ctffind_prompt_table",
    "ctffind_results_parse",
    "ctffind_search_range",
    "ctffind_version_parse",
    "defoci_to_convention",
]

_STEP = "ctfestimation"
#: what [C] stores in ``ctffind4_resolution`` for an infinite fit resolution
RESOLUTION_INFINITY_ANGSTROM = 100000.0
_SUPPORTED = (("ctffind4", r"4\.1\.\d+"), ("ctffind5", r"5\.\d+\.\d+"))


def _bad(message: str) -> InvalidParameters:
    return InvalidParameters(message, step=_STEP)


@dataclass(frozen=True, slots=True)
class CtffindVersion:
    """A detected CTFFIND version: ``engine`` is ``ctffind4`` or ``ctffind5``."""

    engine: str
    version: str

    @property
    def n_result_columns(self) -> int:
        """Numbers per row of the results ``.txt``: 7 (CTFFIND4) or 10 (CTFFIND5)."""
        return 10 if self.engine == "ctffind5" else 7


def ctffind_version_parse(text: str) -> CtffindVersion:
    """Parse CTFFIND's ``--version`` output or banner: the last x.y.z number on a line that mentions
    CTFFIND or "version", or that is a bare version (``4.1.14``, ``Version : 5.0.2``).

    Raises
    ------
    LogParseError
        No version in the text.
    UnsupportedVersion
        Neither 4.1.x nor 5.x.y.
    """
    found = [v for line in text.splitlines()
             if re.search(r"ctffind|version", line, re.IGNORECASE) or re.fullmatch(r"\s*v?\d+\.\d+\.\d+\s*", line)
             for v in re.findall(r"(?<![\d.])v?(\d+\.\d+\.\d+)(?![\d.])", line)]
    if not found:
        raise LogParseError(f"no CTFFIND version in {text.strip()[-200:]!r}", step=_STEP, program="ctffind")
    version = found[-1]
    for engine, pattern in _SUPPORTED:
        if re.fullmatch(pattern, version):
            return CtffindVersion(engine, version)
    raise UnsupportedVersion(f"CTFFIND version {version} has no parser (supported: 4.1.x, 5.x.y)",
                             step=_STEP, program="ctffind", version=version)


@dataclass(frozen=True, slots=True)
class CtffindParams:
    """Answers to CTFFIND's questions for one micrograph (units in the names; defocus positive = underfocus).

    ``movie_frames_to_average`` is set only for stack input (classic
    ``--ddstackid``); phase-shift limits are in degrees as typed on the
    classic command line (sent to CTFFIND in radians).
    """

    input_path: str
    diagnostic_path: str
    pixel_size_angstrom: float
    voltage_kv: float
    cs_mm: float
    amplitude_contrast: float
    box_size_px: int = 1024
    resolution_min_angstrom: float = 50.0
    resolution_max_angstrom: float = 15.0
    defocus_min_angstrom: float = 5000.0
    defocus_max_angstrom: float = 50000.0
    defocus_step_angstrom: float = 500.0
    expected_astigmatism_angstrom: float | None = 500.0  # None: no restraint on astigmatism
    exhaustive_search: bool = False
    phase_shift: bool = False
    phase_shift_min_deg: float = 10.0
    phase_shift_max_deg: float = 170.0
    phase_shift_step_deg: float = 10.0
    movie_frames_to_average: int | None = None

    def __post_init__(self) -> None:
        for name in ("pixel_size_angstrom", "voltage_kv", "defocus_step_angstrom", "resolution_max_angstrom"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise _bad(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.amplitude_contrast < 1 or self.cs_mm < 0:
            raise _bad(f"amplitude_contrast must be in [0, 1) and cs_mm >= 0, got "
                       f"{self.amplitude_contrast}, {self.cs_mm}")
        if not self.resolution_min_angstrom > self.resolution_max_angstrom:
            raise _bad("resolution_min_angstrom must be larger (lower resolution) than resolution_max_angstrom")
        if not 0 <= self.defocus_min_angstrom < self.defocus_max_angstrom:
            raise _bad(f"need 0 <= defocus_min < defocus_max, got {self.defocus_min_angstrom}, "
                       f"{self.defocus_max_angstrom}")
        if self.box_size_px < 16 or self.box_size_px % 2:
            raise _bad(f"box_size_px must be an even number >= 16, got {self.box_size_px}")
        if self.movie_frames_to_average is not None and self.movie_frames_to_average < 1:
            raise _bad("movie_frames_to_average must be >= 1")
        if self.expected_astigmatism_angstrom is not None and not self.expected_astigmatism_angstrom > 0:
            raise _bad(f"expected_astigmatism_angstrom must be > 0 (or None), got {self.expected_astigmatism_angstrom}")
        if self.phase_shift and not self.phase_shift_min_deg < self.phase_shift_max_deg:
            raise _bad("phase_shift_min_deg must be < phase_shift_max_deg")


def ctffind_search_range(*, start_defocus_angstrom: float, defocus_step_um: float,
                         n_steps: int) -> tuple[float, float, float]:
    """Classic search limits: (min, max, step) in Å around the start defocus (compat §5.6).

    range = step(µm) × n × 1e4 Å; min = round(start − range, 1) (the step
    itself if that is < 0); max = round(start + range, 1); step = step × 1e4.
    """
    if not (defocus_step_um > 0 and n_steps >= 1 and start_defocus_angstrom > 0):
        raise _bad(f"need start > 0, step > 0, n >= 1; got {start_defocus_angstrom}, {defocus_step_um}, {n_steps}")
    step = defocus_step_um * 1e4
    span = step * n_steps
    low = round(start_defocus_angstrom - span, 1)
    return (step if low < 0 else low), round(start_defocus_angstrom + span, 1), step


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _fmt(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else f"{float(value):.1f}"


def ctffind_prompt_table(params: CtffindParams, *, version: CtffindVersion) -> PromptTable:
    """The question→answer table CTFFIND ``version`` asks for ``params`` (compat §5.6, in order).

    CTFFIND5 adds ``Determine sample tilt?`` and ``Determine samnple thickness?``
    (the program's own spelling). Classic sends one empty line at the end.
    """
    p = params
    movie = p.movie_frames_to_average is not None
    e: list[PromptAnswer] = [
        PromptAnswer(("Input image file name",), p.input_path),
        PromptAnswer(("Input is a movie",), _yes(movie), optional=True),
    ]
    if movie:
        e.append(PromptAnswer(("Number of frames to average together",), str(p.movie_frames_to_average)))
    e += [
        PromptAnswer(("Output diagnostic image file name", "Output diagnostic filename"), p.diagnostic_path),
        PromptAnswer(("Pixel size",), _fmt(p.pixel_size_angstrom)),
        PromptAnswer(("Acceleration voltage",), _fmt(p.voltage_kv)),
        PromptAnswer(("Spherical aberration",), _fmt(p.cs_mm)),
        PromptAnswer(("Amplitude contrast",), _fmt(p.amplitude_contrast)),
        PromptAnswer(("Size of amplitude spectrum to compute",), str(p.box_size_px)),
        PromptAnswer(("Minimum resolution",), _fmt(p.resolution_min_angstrom)),
        PromptAnswer(("Maximum resolution",), _fmt(p.resolution_max_angstrom)),
        PromptAnswer(("Minimum defocus",), _fmt(p.defocus_min_angstrom)),
        PromptAnswer(("Maximum defocus",), _fmt(p.defocus_max_angstrom)),
        PromptAnswer(("Defocus search step",), _fmt(p.defocus_step_angstrom)),
        PromptAnswer(("Do you know what astigmatism is present?",), "no"),
        PromptAnswer(("Slower, more exhaustive search?",), _yes(p.exhaustive_search)),
        PromptAnswer(("Use a restraint on astigmatism?",), _yes(p.expected_astigmatism_angstrom is not None)),
    ]
    if p.expected_astigmatism_angstrom is not None:
        e.append(PromptAnswer(("Expected (tolerated) astigmatism",), _fmt(p.expected_astigmatism_angstrom)))
    e.append(PromptAnswer(("Find additional phase shift?",), _yes(p.phase_shift)))
    if p.phase_shift:
        e += [PromptAnswer(("Minimum phase shift (rad)",), _fmt(math.radians(p.phase_shift_min_deg))),
              PromptAnswer(("Maximum phase shift (rad)",), _fmt(math.radians(p.phase_shift_max_deg))),
              PromptAnswer(("Phase shift search step",), _fmt(math.radians(p.phase_shift_step_deg)))]
    if version.engine == "ctffind5":
        e += [PromptAnswer(("Determine sample tilt?",), "no"),
              PromptAnswer(("Determine samnple thickness?", "Determine sample thickness?"), "no")]
    e.append(PromptAnswer(("Do you want to set expert options?",), "no"))
    return PromptTable(tuple(e), trailing_lines=("",))


@dataclass(frozen=True, slots=True)
class CtffindResult:
    """One row of CTFFIND's results ``.txt`` (CTFFIND's own columns and units)."""

    micrograph_number: int
    defocus1_angstrom: float
    defocus2_angstrom: float
    azimuth_deg: float
    phase_shift_rad: float
    cross_correlation: float
    fit_resolution_angstrom: float
    tilt_axis_deg: float | None = None
    tilt_angle_deg: float | None = None
    thickness_angstrom: float | None = None


def _floats(tokens: list[str], *, line_no: int, ctx: dict) -> list[float]:
    try:
        return [float(t) for t in tokens]
    except ValueError:
        raise LogParseError(f"line {line_no}: non-numeric value in {' '.join(tokens)!r}", **ctx) from None


def ctffind_results_parse(text: str, *, version: CtffindVersion, path: str | None = None,
                          exposure_id: int | None = None) -> tuple[CtffindResult, ...]:
    """Parse CTFFIND's results ``.txt``: ``#`` comments, then one row per micrograph.

    Raises
    ------
    LogParseError
        No row, a row with a column count other than the version's (7 or
        10), a non-numeric value, or NaN defoci.
    """
    ctx = {"step": _STEP, "path": path, "exposure_id": exposure_id, "program": version.engine,
           "version": version.version}
    rows = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        tokens = line.split()
        if len(tokens) != version.n_result_columns:
            raise LogParseError(f"line {line_no} has {len(tokens)} columns, {version.engine} writes "
                                f"{version.n_result_columns}: {line.strip()!r}", **ctx)
        v = _floats(tokens, line_no=line_no, ctx=ctx)
        if not all(math.isfinite(x) for x in v[1:4]):
            raise LogParseError(f"line {line_no}: non-finite defocus or azimuth {v[1:4]}", **ctx)
        extra = v[7:10] if len(v) == 10 else [None, None, None]
        rows.append(CtffindResult(int(v[0]), v[1], v[2], v[3], v[4], v[5], v[6], *extra))
    if not rows:
        raise LogParseError("the results file has no data row", **ctx)
    return tuple(rows)


@dataclass(frozen=True, slots=True)
class AvrotCurves:
    """The six curves of ``_avrot.txt`` for one micrograph, each over spatial frequency (1/Å)."""

    spatial_frequency_per_angstrom: np.ndarray
    rotational_average_no_astigmatism: np.ndarray
    rotational_average: np.ndarray
    ctf_fit: np.ndarray
    cross_correlation: np.ndarray
    noise_cc_2sigma: np.ndarray


def ctffind_avrot_parse(text: str, *, path: str | None = None, program: str = "ctffind",
                        exposure_id: int | None = None) -> tuple[AvrotCurves, ...]:
    """Parse ``_avrot.txt``: after ``#`` lines, 6 numeric lines per micrograph.

    Raises
    ------
    LogParseError
        No data, a line count that is not a multiple of 6, curves of
        different lengths within a micrograph, or a non-numeric value.
    """
    ctx = {"step": _STEP, "path": path, "exposure_id": exposure_id, "program": program}
    data = [(n, line.split()) for n, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.lstrip().startswith("#")]
    if not data or len(data) % 6:
        raise LogParseError(f"_avrot.txt has {len(data)} data lines, expected 6 per micrograph", **ctx)
    out = []
    for k in range(0, len(data), 6):
        curves = [np.array(_floats(tokens, line_no=n, ctx=ctx)) for n, tokens in data[k:k + 6]]
        if len({c.size for c in curves}) != 1:
            raise LogParseError(f"micrograph {k // 6 + 1}: curves of different lengths "
                                f"{[c.size for c in curves]}", **ctx)
        out.append(AvrotCurves(*curves))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class CtfDataValues:
    """ApCtfData column values (classic names; metres, degrees, radians, Å, mm)."""

    defocus1: float
    defocus2: float
    angle_astigmatism: float
    defocusinit: float
    amplitude_contrast: float
    cs: float
    extra_phase_shift: float
    cross_correlation: float
    confidence: float
    confidence_d: float
    ctffind4_resolution: float

    def as_columns(self) -> dict[str, float]:
        """Column name → value."""
        return asdict(self)


def defoci_to_convention(*, defocus1_m: float, defocus2_m: float, angle_deg: float,
                         amplitude_contrast: float) -> tuple[float, float, float, float]:
    """Appion's ``convertDefociToConvention``: returns (defocus1, defocus2, angle, amplitude contrast).

    |amp. contrast| < 0.005 → 0; if |defocus1| > |defocus2| swap them and add
    90° to the angle; if both are negative take absolute values; wrap the angle
    into (−90, 90].
    """
    ac = 0.0 if abs(amplitude_contrast) < 0.005 else amplitude_contrast
    d1, d2, angle = defocus1_m, defocus2_m, angle_deg
    if abs(d1) > abs(d2):
        d1, d2, angle = d2, d1, angle + 90.0
    if d1 < 0 and d2 < 0:
        d1, d2 = abs(d1), abs(d2)
    angle = angle % 180.0
    if angle > 90.0:
        angle -= 180.0
    return d1, d2, angle, ac


def apctfdata_values_from_ctffind(result: CtffindResult, *, amplitude_contrast: float, cs_mm: float,
                                  start_defocus_angstrom: float) -> CtfDataValues:
    """ApCtfData values from one CTFFIND row, classic [C] mapping then normalisation (compat §5.6).

    defocus2 ← col2 × 1e-10 m, defocus1 ← col3 × 1e-10 m, angle ← col4 + 90,
    extra_phase_shift ← col5, cross_correlation = confidence ← col6,
    confidence_d ← round(sqrt(|col6|), 5), ctffind4_resolution ← col7 (inf →
    100000.0), defocusinit ← start × 1e-10 m.
    """
    d1, d2, angle, ac = defoci_to_convention(defocus1_m=result.defocus2_angstrom * 1e-10,
                                             defocus2_m=result.defocus1_angstrom * 1e-10,
                                             angle_deg=result.azimuth_deg + 90.0,
                                             amplitude_contrast=amplitude_contrast)
    res = result.fit_resolution_angstrom
    cc = result.cross_correlation
    return CtfDataValues(
        defocus1=d1, defocus2=d2, angle_astigmatism=angle, defocusinit=start_defocus_angstrom * 1e-10,
        amplitude_contrast=ac, cs=cs_mm, extra_phase_shift=float(result.phase_shift_rad or 0.0),
        cross_correlation=cc, confidence=cc, confidence_d=round(math.sqrt(abs(cc)), 5),
        ctffind4_resolution=RESOLUTION_INFINITY_ANGSTROM if math.isinf(res) else res,
    )


def ctffind_params_from_search(params, *, input_path: str, diagnostic_path: str) -> CtffindParams:
    """CTFFIND's answers for a run's `CtfSearchParameters` (the daemon's settings, the built-in engine's too).

    The restraint on astigmatism is answered "no" when the parameters have none; phase-shift
    limits go from radians to the degrees of `CtffindParams` (and back to radians in the table).

    Raises
    ------
    InvalidParameters
        A setting CTFFIND's basic prompts cannot express: known astigmatism, or resampling
        options other than CTFFIND's defaults (on, to 1.4 Å).
    """
    if params.known_astigmatism_angstrom is not None or params.known_astigmatism_azimuth_degree is not None:
        raise _bad("known astigmatism is not supported with an external CTFFIND engine")
    if not params.resample or params.target_pixel_size_angstrom != 1.4:
        raise _bad("resampling options other than CTFFIND's defaults (resample to 1.4 Å) are not supported "
                   "with an external CTFFIND engine")
    return CtffindParams(
        input_path=input_path, diagnostic_path=diagnostic_path, pixel_size_angstrom=params.pixel_size_angstrom,
        voltage_kv=params.voltage_kv, cs_mm=params.spherical_aberration_mm,
        amplitude_contrast=params.amplitude_contrast, box_size_px=params.box_size,
        resolution_min_angstrom=params.min_resolution_angstrom, resolution_max_angstrom=params.max_resolution_angstrom,
        defocus_min_angstrom=params.min_defocus_angstrom, defocus_max_angstrom=params.max_defocus_angstrom,
        defocus_step_angstrom=params.defocus_step_angstrom,
        expected_astigmatism_angstrom=params.astigmatism_restraint_angstrom,
        exhaustive_search=params.exhaustive_search, phase_shift=params.find_phase_shift,
        phase_shift_min_deg=math.degrees(params.min_phase_shift_radian),
        phase_shift_max_deg=math.degrees(params.max_phase_shift_radian),
        phase_shift_step_deg=math.degrees(params.phase_shift_step_radian))
