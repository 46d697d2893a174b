"""Gctf as an external engine: command builder, ``_gctf.log`` and ``.star`` parsers, ApCtfData mapping (pure).

Classic ``gctf.py`` (compat §4.3): the result comes from the line after the
``Defocus_U`` header of ``<short>_gctf.log`` (U → defocus2, V → defocus1,
angle + 90; 6 or 7 tokens with the CC in token 4 or 5; a phase shift in
degrees converted to radians) and the 7th token of the ``Resolution`` line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from semc.base.errors import InvalidParameters, LogParseError, UnsupportedVersion
from semc.ctfestimation.calc.external import (
    RESOLUTION_INFINITY_ANGSTROM,
    CtfDataValues,
    defoci_to_convention,
)

__all__ = [
    "GctfParams",
    "GctfResult",
    "GctfVersion",
    "apctfdata_values_from_gctf",
    "gctf_command",
    "gctf_epa_parse",
    "gctf_log_parse",
    "gctf_params_from_search",
    "gctf_star_parse",
    "gctf_star_values",
    "gctf_version_parse",
]

_STEP = "ctfestimation"


@dataclass(frozen=True, slots=True)
class GctfParams:
    """Gctf options of classic ``gctf.py`` (Å, kV, mm; defocus positive = underfocus)."""

    input_path: str
    pixel_size_angstrom: float
    voltage_kv: float
    cs_mm: float
    amplitude_contrast: float
    box_size_px: int = 1024
    resolution_min_angstrom: float = 50.0
    resolution_max_angstrom: float = 4.0
    defocus_min_angstrom: float = 5000.0
    defocus_max_angstrom: float = 50000.0
    defocus_step_angstrom: float = 500.0
    expected_astigmatism_angstrom: float = 1000.0
    do_epa: bool = False
    phase_shift: bool = False
    phase_shift_min_deg: float = 0.0
    phase_shift_max_deg: float = 180.0
    phase_shift_step_deg: float = 10.0
    gpu_id: int = 0

    def __post_init__(self) -> None:
        if not (self.pixel_size_angstrom > 0 and self.voltage_kv > 0 and self.defocus_step_angstrom > 0):
            raise InvalidParameters("pixel size, voltage and defocus step must be > 0", step=_STEP)
        if not 0 <= self.defocus_min_angstrom < self.defocus_max_angstrom:
            raise InvalidParameters("need 0 <= defocus_min < defocus_max", step=_STEP)
        if not self.resolution_min_angstrom > self.resolution_max_angstrom > 0:
            raise InvalidParameters("need resolution_min > resolution_max > 0", step=_STEP)


def gctf_command(params: GctfParams, *, executable: str = "Gctf") -> list[str]:
    """The Gctf argument list, one element per value, input file last."""
    p = params
    argv = [executable, "--apix", f"{p.pixel_size_angstrom:.4f}", "--kv", f"{p.voltage_kv:.1f}",
            "--cs", f"{p.cs_mm:.2f}", "--ac", f"{p.amplitude_contrast:.3f}", "--boxsize", str(p.box_size_px),
            "--resL", f"{p.resolution_min_angstrom:.2f}", "--resH", f"{p.resolution_max_angstrom:.2f}",
            "--defL", f"{p.defocus_min_angstrom:.1f}", "--defH", f"{p.defocus_max_angstrom:.1f}",
            "--defS", f"{p.defocus_step_angstrom:.1f}", "--astm", f"{p.expected_astigmatism_angstrom:.1f}"]
    if p.do_epa:
        argv += ["--do_EPA", "1"]
    if p.phase_shift:
        argv += ["--phase_shift_L", f"{p.phase_shift_min_deg:.1f}", "--phase_shift_H",
                 f"{p.phase_shift_max_deg:.1f}", "--phase_shift_S", f"{p.phase_shift_step_deg:.1f}",
                 "--phase_shift_T", "1"]
    return argv + ["--gid", str(p.gpu_id), p.input_path]


@dataclass(frozen=True, slots=True)
class GctfResult:
    """Gctf's final values (its own convention: U, V in Å, angle in degrees, phase shift in degrees)."""

    defocus_u_angstrom: float
    defocus_v_angstrom: float
    angle_deg: float
    cross_correlation: float
    phase_shift_deg: float
    resolution_angstrom: float | None


def _fail(message: str, path: str | None, version: str | None = None,
          exposure_id: int | None = None) -> LogParseError:
    return LogParseError(message, step=_STEP, path=path, program="gctf", version=version, exposure_id=exposure_id)


def gctf_log_parse(text: str, *, path: str | None = None, version: str | None = None,
                   exposure_id: int | None = None) -> GctfResult:
    """Parse ``_gctf.log``: the last line after a ``Defocus_U`` header, and the ``Resolution`` line.

    Raises
    ------
    LogParseError
        No ``Defocus_U`` header or value line, a value line of other than 6
        or 7 tokens, or non-numeric values.
    """
    lines = text.splitlines()
    heads = [i for i, line in enumerate(lines) if line.split()[:1] == ["Defocus_U"]]
    if not heads or heads[-1] + 1 >= len(lines):
        raise _fail("no 'Defocus_U' header followed by a value line in the Gctf log", path, version, exposure_id)
    tokens = lines[heads[-1] + 1].split()
    if len(tokens) not in (6, 7):
        raise _fail(f"Gctf value line has {len(tokens)} tokens, expected 6 or 7: {tokens}", path, version, exposure_id)
    try:
        values = [float(t) for t in tokens[:len(tokens) - 2]]
    except ValueError:
        raise _fail(f"Gctf value line is not numeric: {tokens}", path, version, exposure_id) from None
    phase = values[3] if len(tokens) == 7 else 0.0
    resolution = None
    for line in lines:
        words = line.split()
        if words[:1] == ["Resolution"] and len(words) >= 7:
            try:
                resolution = float(words[6])
            except ValueError:
                raise _fail(f"Resolution line 7th token is not a number: {line!r}", path, version, exposure_id) from None
    return GctfResult(values[0], values[1], values[2], values[-1], phase, resolution)


def gctf_star_parse(text: str, *, path: str | None = None) -> list[dict[str, str]]:
    """Rows of the first ``loop_`` of a Gctf ``.star`` file, as ``{label without _rln: text}``.

    Raises
    ------
    LogParseError
        No loop, or a row whose field count differs from the labels.
    """
    labels: list[str] = []
    rows: list[dict[str, str]] = []
    in_loop = False
    for line in text.splitlines():
        s = line.strip()
        if s == "loop_":
            if rows:
                break
            in_loop, labels = True, []
        elif in_loop and s.startswith("_"):
            labels.append(re.sub(r"^_(rln)?", "", s.split()[0]))
        elif in_loop and s and not s.startswith("#") and labels:
            fields = s.split()
            if len(fields) != len(labels):
                raise _fail(f"star row has {len(fields)} fields for {len(labels)} labels: {s!r}", path)
            rows.append(dict(zip(labels, fields)))
        elif in_loop and rows and (not s or s.startswith("data_")):
            break
    if not rows:
        raise _fail("no loop_ with data rows in the star file", path)
    return rows


def apctfdata_values_from_gctf(result: GctfResult, *, amplitude_contrast: float, cs_mm: float,
                               start_defocus_angstrom: float) -> CtfDataValues:
    """ApCtfData values from Gctf, classic mapping (U → defocus2, V → defocus1, angle + 90) then normalisation."""
    d1, d2, angle, ac = defoci_to_convention(defocus1_m=result.defocus_v_angstrom * 1e-10,
                                             defocus2_m=result.defocus_u_angstrom * 1e-10,
                                             angle_deg=result.angle_deg + 90.0,
                                             amplitude_contrast=amplitude_contrast)
    cc = result.cross_correlation
    res = result.resolution_angstrom
    return CtfDataValues(
        defocus1=d1, defocus2=d2, angle_astigmatism=angle, defocusinit=start_defocus_angstrom * 1e-10,
        amplitude_contrast=ac, cs=cs_mm, extra_phase_shift=math.radians(result.phase_shift_deg),
        cross_correlation=cc, confidence=cc, confidence_d=round(math.sqrt(abs(cc)), 5),
        ctffind4_resolution=(RESOLUTION_INFINITY_ANGSTROM if res is None or math.isinf(res) else res),
    )


#: Gctf versions whose outputs we parse (1.18 is the phase-plate build of the same outputs)
GCTF_SUPPORTED = ("1.06", "1.18")


@dataclass(frozen=True, slots=True)
class GctfVersion:
    """A detected Gctf version (``engine`` is always ``gctf``)."""

    engine: str
    version: str


def gctf_version_parse(text: str) -> GctfVersion:
    """Gctf's version from its banner (printed by ``Gctf --help`` and at the top of every run).

    Takes the first ``x.yy`` number on a line that mentions Gctf or "version" (``Version: v1.06``,
    ``Gctf-v1.18``): the banner comes first, later lines may name other versions (CUDA's).

    Raises
    ------
    LogParseError
        No version in the text.
    UnsupportedVersion
        A version other than 1.06 or 1.18.
    """
    found = [v for line in text.splitlines() if re.search(r"gctf|version", line, re.IGNORECASE)
             for v in re.findall(r"(?<![\d.])v?(\d+\.\d+)(?![\d.])", line)]
    if not found:
        raise LogParseError(f"no Gctf version in {text.strip()[-200:]!r}", step=_STEP, program="gctf")
    version = found[0]
    if version not in GCTF_SUPPORTED:
        raise UnsupportedVersion(f"Gctf version {version} has no parser (supported: {', '.join(GCTF_SUPPORTED)})",
                                 step=_STEP, program="gctf", version=version)
    return GctfVersion("gctf", version)


def gctf_params_from_search(params, *, input_path: str, gpu_id: int = 0) -> GctfParams:
    """Gctf options for a run's `CtfSearchParameters`; EPA is always on (it gives the fit resolution).

    Gctf has no "no restraint" on astigmatism: without one, its own default (1000 Å) is used.
    """
    restraint = params.astigmatism_restraint_angstrom
    return GctfParams(
        input_path=input_path, pixel_size_angstrom=params.pixel_size_angstrom, voltage_kv=params.voltage_kv,
        cs_mm=params.spherical_aberration_mm, amplitude_contrast=params.amplitude_contrast,
        box_size_px=params.box_size, resolution_min_angstrom=params.min_resolution_angstrom,
        resolution_max_angstrom=params.max_resolution_angstrom, defocus_min_angstrom=params.min_defocus_angstrom,
        defocus_max_angstrom=params.max_defocus_angstrom, defocus_step_angstrom=params.defocus_step_angstrom,
        expected_astigmatism_angstrom=1000.0 if restraint is None else restraint, do_epa=True,
        phase_shift=params.find_phase_shift, phase_shift_min_deg=math.degrees(params.min_phase_shift_radian),
        phase_shift_max_deg=math.degrees(params.max_phase_shift_radian),
        phase_shift_step_deg=math.degrees(params.phase_shift_step_radian), gpu_id=gpu_id)


def _star_float(row: dict[str, str], label: str, fail) -> float:
    try:
        value = float(row[label])
    except KeyError:
        raise fail(f"no {label} in the star row (labels: {', '.join(row)})") from None
    except ValueError:
        raise fail(f"{label} is not a number: {row[label]!r}") from None
    if not math.isfinite(value):
        raise fail(f"{label} is not finite: {row[label]!r}")
    return value


def gctf_star_values(text: str, *, micrograph: str, path: str | None = None, version: str | None = None,
                     exposure_id: int | None = None) -> GctfResult:
    """Gctf's values for ``micrograph`` from ``micrographs_all_gctf.star`` (RELION labels).

    The row is the one whose ``MicrographName`` ends with ``micrograph``; the phase shift
    (degrees) is 0 without a ``PhaseShift`` column; ``FinalResolution`` may be absent.

    Raises
    ------
    LogParseError
        No row for the micrograph, or a row without numeric ``DefocusU``, ``DefocusV``,
        ``DefocusAngle`` and ``CtfFigureOfMerit``.
    """
    def fail(message: str) -> LogParseError:
        return _fail(message, path, version, exposure_id)

    try:
        rows = gctf_star_parse(text, path=path)
    except LogParseError as exc:
        raise fail(exc.message) from None
    mine = [r for r in rows if r.get("MicrographName", "").endswith(micrograph)]
    if not mine:
        raise fail(f"no row for {micrograph} in the star file ({len(rows)} rows)")
    row = mine[-1]
    values = [_star_float(row, label, fail) for label in ("DefocusU", "DefocusV", "DefocusAngle", "CtfFigureOfMerit")]
    phase = _star_float(row, "PhaseShift", fail) if "PhaseShift" in row else 0.0
    resolution = _star_float(row, "FinalResolution", fail) if "FinalResolution" in row else None
    return GctfResult(values[0], values[1], values[2], values[3], phase, resolution)


def gctf_epa_parse(text: str, *, path: str | None = None, version: str | None = None,
                   exposure_id: int | None = None) -> dict[str, np.ndarray]:
    """Gctf's ``_EPA.log``: a header line, then rows of resolution (Å), |CTFsim|, EPA(ln|F|),
    EPA(ln|F| - background) and the cross-correlation.

    Returns
    -------
    dict
        ``spatial_frequency_per_angstrom``, ``ctf_fit``, ``epa``, ``epa_background_subtracted``,
        ``cross_correlation``: (n,) arrays, in file order.

    Raises
    ------
    LogParseError
        No data row, a row of other than 5 numbers, or a resolution <= 0.
    """
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens or not re.match(r"[-+\d.]", tokens[0]):
            continue  # the header
        try:
            numbers = [float(t) for t in tokens]
        except ValueError:
            raise _fail(f"EPA line {n} is not numeric: {line.strip()!r}", path, version, exposure_id) from None
        if len(numbers) != 5 or not numbers[0] > 0:
            raise _fail(f"EPA line {n} has {len(numbers)} values (expected 5, resolution > 0): {line.strip()!r}",
                        path, version, exposure_id)
        rows.append(numbers)
    if not rows:
        raise _fail("the EPA log has no data row", path, version, exposure_id)
    data = np.asarray(rows, dtype=np.float64)
    return {"spatial_frequency_per_angstrom": 1.0 / data[:, 0], "ctf_fit": data[:, 1], "epa": data[:, 2],
            "epa_background_subtracted": data[:, 3], "cross_correlation": data[:, 4]}
