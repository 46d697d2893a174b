"""MotionCor2 / MotionCor3 output: version detection, log parsers per version, classic trajectories (pure).

Supported versions and their whole-frame shift tables (compat §5.2, §5.3):

=====================  ==============  =========================================================
program                version         shift table
=====================  ==============  =========================================================
MotionCor2             1.5.0           ``Full-frame alignment shift`` then ``...... Frame (  n) shift: x y``
MotionCor2             1.6.x           ``Full-frame alignment`` / ``Frame   x Shift   y Shift`` then ``n x y``
MotionCor3             1.2.x           as MotionCor2 1.5.0
=====================  ==============  =========================================================

Both tables end at ``Global shifts are corrected``. Anything else (another
version, a log without the table, a malformed or truncated table) raises:
never an empty or zero trajectory.

The motioncorr-format log and the trajectory/statistics rows follow classic
Appion ([C], compat §5.4): positions are the shifts negated, re-centred on
the middle frame (index n//2) and divided by ``-FtBin``; all n positions are
kept (classic's reader dropped the last two, a quirk not reproduced; D9 and
D10 are not reproduced either).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from semc.base.errors import InvalidParameters, LogParseError, UnsupportedVersion
from semc.motioncorrection.calc import appion

__all__ = [
    "MotionCorVersion",
    "MotionCorLog",
    "FrameTrajectory",
    "AlignStats",
    "SUPPORTED_VERSIONS",
    "motioncor_version_parse",
    "motioncor_log_parse",
    "motioncorr_positions_from_shifts",
    "motioncorr_log_text",
    "motioncorr_log_positions",
    "frame_trajectory_from_positions",
    "align_stats_from_positions",
    "ClassicMotionRecords",
    "classic_records_from_log",
]

_STEP = "motioncorrection"
#: (program, version regex) -> log format
SUPPORTED_VERSIONS: tuple[tuple[str, str, str], ...] = (
    ("MotionCor2", r"1\.5\.0", "frame-shift"),
    ("MotionCor2", r"1\.6\.\d+", "table"),
    ("MotionCor3", r"1\.2\.\d+", "frame-shift"),
)
_VERSION_LINE = re.compile(r"^(MotionCor\d)\s+version\s+(\S+)", re.IGNORECASE)
_FRAME_SHIFT_ROW = re.compile(r"^\.{6} Frame \(\s*(\d+)\) shift:\s+(\S+)\s+(\S+)\s*$")
_TABLE_ROW = re.compile(r"^\s*(\d+)\s+(\S+)\s+(\S+)\s*$")
_END = "Global shifts are corrected"
_ECHO = re.compile(r"^-([A-Za-z][A-Za-z0-9]*)(?:[ \t]+(.*?))?\s*$")
_MOTIONCORR_ROW = re.compile(r"^\.{6}Add Frame #(\d+) with xy shift: (\S+) (\S+)\s*$")


@dataclass(frozen=True, slots=True)
class MotionCorVersion:
    """A detected MotionCor version and the log format it writes (``frame-shift`` or ``table``)."""

    program: str
    version: str
    log_format: str

    @property
    def label(self) -> str:
        """E.g. ``MotionCor2 1.6.4``."""
        return f"{self.program} {self.version}"


@dataclass(frozen=True, slots=True)
class MotionCorLog:
    """What a MotionCor log says about one movie.

    Attributes
    ----------
    program, version
        From the `MotionCorVersion` used to parse.
    frame_numbers
        The 1-based frame numbers of the shift table.
    shifts_px
        Per frame (x, y) as printed: MotionCor's correction, pixels of the
        input movie; zero at the reference frame (1.5.0, MotionCor3) or at
        the first frame (1.6.x).
    parameters
        The parameter echo, ``(flag, value text)`` in order (flags may repeat).
    output_paths
        Paths after ``Corrected sum has been saved in:`` (1.6.x).
    total_time_s
        From ``Total time:``, None if absent.
    """

    program: str
    version: str
    frame_numbers: tuple[int, ...]
    shifts_px: tuple[tuple[float, float], ...]
    parameters: tuple[tuple[str, str], ...] = ()
    output_paths: tuple[str, ...] = ()
    total_time_s: float | None = None

    def __post_init__(self) -> None:
        if not self.shifts_px or len(self.shifts_px) != len(self.frame_numbers):
            raise InvalidParameters("a MotionCor log needs one shift per frame number", step=_STEP)


def motioncor_version_parse(text: str) -> MotionCorVersion:
    """Parse ``<exe> --version`` output: the last line starting with ``MotionCor``.

    Raises
    ------
    LogParseError
        No ``MotionCor<n> version <v>`` line.
    UnsupportedVersion
        A version without a pinned parser (see `SUPPORTED_VERSIONS`).
    """
    found = [m for m in (_VERSION_LINE.match(line.strip()) for line in text.splitlines()) if m]
    if not found:
        tail = " | ".join(text.strip().splitlines()[-3:])
        raise LogParseError(f"no 'MotionCor<n> version <v>' line in the version output: {tail!r}",
                            step=_STEP, program="motioncor")
    program, version = found[-1].group(1), found[-1].group(2)
    program = "MotionCor" + program[-1]
    for prog, pattern, log_format in SUPPORTED_VERSIONS:
        if prog == program and re.fullmatch(pattern, version):
            return MotionCorVersion(program, version, log_format)
    supported = ", ".join(f"{p} {v.replace(chr(92), '').replace('d+', 'x')}" for p, v, _ in SUPPORTED_VERSIONS)
    raise UnsupportedVersion(f"{program} version {version} has no log parser (supported: {supported})",
                             step=_STEP, program=program, version=version)


def _number(token: str, *, line_no: int, version: MotionCorVersion, path: str | None) -> float:
    try:
        value = float(token)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise LogParseError(f"line {line_no}: {token!r} is not a finite number", step=_STEP, path=path,
                            program=version.program, version=version.version)
    return value


def _table_start(lines: list[str], version: MotionCorVersion, path: str | None) -> int:
    """Index of the first row after the header of ``version``'s shift table."""
    for i, line in enumerate(lines):
        s = line.strip()
        if version.log_format == "frame-shift" and s == "Full-frame alignment shift":
            return i + 1
        if (version.log_format == "table" and s == "Full-frame alignment" and i + 1 < len(lines)
                and lines[i + 1].split() == ["Frame", "x", "Shift", "y", "Shift"]):
            return i + 2
    header = "Full-frame alignment shift" if version.log_format == "frame-shift" else "Full-frame alignment"
    raise LogParseError(f"no whole-frame shift table ({header!r}) in the {version.label} log", step=_STEP,
                        path=path, program=version.program, version=version.version)


def _shift_rows(lines: list[str], start: int, version: MotionCorVersion, path: str | None):
    row_re = _FRAME_SHIFT_ROW if version.log_format == "frame-shift" else _TABLE_ROW
    frames: list[int] = []
    shifts: list[tuple[float, float]] = []
    ctx = {"step": _STEP, "path": path, "program": version.program, "version": version.version}
    for line_no, line in enumerate(lines[start:], start + 1):
        if not line.strip():
            continue
        if line.strip().startswith(_END):
            break
        m = row_re.match(line)
        if not m:
            raise LogParseError(f"line {line_no} of the shift table does not parse: {line!r}", **ctx)
        frames.append(int(m.group(1)))
        shifts.append(tuple(_number(t, line_no=line_no, version=version, path=path) for t in m.group(2, 3)))
    else:
        raise LogParseError(f"the shift table is not followed by {_END!r} (truncated log?)", **ctx)
    if not frames:
        raise LogParseError("the shift table has no rows", **ctx)
    if frames != list(range(1, len(frames) + 1)):
        raise LogParseError(f"frame numbers are not 1..{len(frames)}: {frames[:5]}...", **ctx)
    return tuple(frames), tuple(shifts)


def motioncor_log_parse(text: str, *, version: MotionCorVersion, path: str | None = None,
                        exposure_id: int | None = None) -> MotionCorLog:
    """Parse one movie's MotionCor stdout with the parser pinned to ``version``.

    Parameters
    ----------
    text
        The program's output (banners before the parameter echo are ignored).
    version
        From `motioncor_version_parse` (detected once per worker).
    path, exposure_id
        The log file and the exposure, for error messages.

    Raises
    ------
    LogParseError
        No shift table for that version, a malformed or truncated table,
        non-finite numbers, or frame numbers that are not 1..n.
    """
    try:
        return _log_parse(text, version, path)
    except LogParseError as exc:
        raise exc.with_context(exposure_id=exposure_id) from None


def _log_parse(text: str, version: MotionCorVersion, path: str | None) -> MotionCorLog:
    lines = text.splitlines()
    start = _table_start(lines, version, path)
    if any(s.strip() in ("Full-frame alignment shift", "Full-frame alignment") for s in lines[start:]):
        raise LogParseError("several shift tables (a -Serial log?): split it per movie first", step=_STEP,
                            path=path, program=version.program, version=version.version)
    frames, shifts = _shift_rows(lines, start, version, path)
    params = tuple((m.group(1), m.group(2) or "") for m in map(_ECHO.match, lines[:start]) if m)
    outputs = tuple(lines[i + 1].strip() for i, line in enumerate(lines[:-1])
                    if line.strip() == "Corrected sum has been saved in:")
    total = [float(m.group(1)) for m in (re.match(r"^Total time:\s*(\S+)\s*sec", s) for s in lines) if m]
    return MotionCorLog(version.program, version.version, frames, shifts, params, outputs,
                        total[-1] if total else None)


def motioncorr_positions_from_shifts(shifts_px, *, ft_bin: float = 1.0) -> np.ndarray:
    """Classic positions ``-(s - s[n//2]) / ft_bin`` (pixels of the aligned image), shape (n, 2).

    Delegates to `semc.motioncorrection.calc.appion.motioncorr_positions` (one implementation).
    """
    s = np.asarray(shifts_px, dtype=np.float64).reshape(-1, 2)
    if s.shape[0] == 0 or not ft_bin > 0:
        raise InvalidParameters(f"need shifts and ft_bin > 0, got {s.shape[0]} shifts, ft_bin={ft_bin}",
                                step=_STEP)
    pairs = tuple((float(x), float(y)) for x, y in s)
    return np.array(appion.motioncorr_positions(pairs, output_bin=ft_bin), dtype=np.float64)


def motioncorr_log_text(positions_px, *, throw_frames: int = 0) -> str:
    """The motioncorr-format log (``<name>_st_Log.txt``) myamiweb and classic readers use.

    Header ``Sum Frame #000 - #<n, %03d> (Reference Frame #<n//2, %03d>):`` then one line per
    position ``......Add Frame #<index + throw, %03d> with xy shift: <x %.5f> <y %.5f>``.
    Delegates to `semc.motioncorrection.calc.appion.motioncorr_log_text`.
    """
    p = np.asarray(positions_px, dtype=np.float64).reshape(-1, 2)
    return appion.motioncorr_log_text(tuple((float(x), float(y)) for x, y in p), throw=throw_frames)


def motioncorr_log_positions(text: str, *, path: str | None = None) -> np.ndarray:
    """Read all positions back from a motioncorr-format log. Shape (n, 2).

    Raises
    ------
    LogParseError
        No ``......Add Frame`` line.
    """
    rows = [m.group(2, 3) for m in map(_MOTIONCORR_ROW.match, text.splitlines()) if m]
    if not rows:
        raise LogParseError("no '......Add Frame' line in the motioncorr-format log", step=_STEP, path=path,
                            program="motioncorr")
    return np.array(rows, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class FrameTrajectory:
    """Values of one ApDDFrameTrajectoryData row (pixels of the aligned image)."""

    pos_x: tuple[float, ...]
    pos_y: tuple[float, ...]
    last_x: float
    last_y: float
    number_of_positions: int
    reference_index: int


@dataclass(frozen=True, slots=True)
class AlignStats:
    """Values of one ApDDAlignStatsData row: three largest frame-to-frame drifts (px), indices, median.

    ``top_shift_values``/``top_shift_indices`` hold up to three entries
    (fewer for movies with fewer than four positions).
    """

    apix: float
    top_shift_values: tuple[float, ...]
    top_shift_indices: tuple[int, ...]
    median_shift_value: float


def frame_trajectory_from_positions(positions_px, *, max_listed: int = 20) -> FrameTrajectory:
    """Trajectory row: the first ``max_listed`` positions, the last one, the count, reference n//2."""
    p = np.asarray(positions_px, dtype=np.float64).reshape(-1, 2)
    if p.shape[0] == 0:
        raise InvalidParameters("a trajectory needs at least one position", step=_STEP)
    head = p[:max_listed]
    return FrameTrajectory(tuple(float(v) for v in head[:, 0]), tuple(float(v) for v in head[:, 1]),
                           float(p[-1, 0]), float(p[-1, 1]), int(p.shape[0]), int(p.shape[0] // 2))


def align_stats_from_positions(positions_px, *, aligned_pixel_size_angstrom: float,
                               running_window: int = 1) -> AlignStats:
    """Drift statistics for ApDDAlignStatsData from consecutive positions.

    Drift i = |position[i+1] − position[i]| (pixels). With a running-average
    window w > 1 (``-Group``), the first and last ⌊(w−1)/2⌋ drifts are replaced
    by their nearest inner neighbour (compat §5.4: "duplicated").

    Raises
    ------
    InvalidParameters
        Fewer than two positions, a window < 1 or a non-positive pixel size.
    """
    p = np.asarray(positions_px, dtype=np.float64).reshape(-1, 2)
    if p.shape[0] < 2 or running_window < 1 or not aligned_pixel_size_angstrom > 0:
        raise InvalidParameters(f"need >= 2 positions, window >= 1 and a pixel size > 0; got {p.shape[0]}, "
                                f"{running_window}, {aligned_pixel_size_angstrom}", step=_STEP)
    drift = np.hypot(*np.diff(p, axis=0).T)
    h = (running_window - 1) // 2
    if h and drift.size > 2 * h:
        drift[:h] = drift[h]
        drift[-h:] = drift[-h - 1]
    order = sorted(range(drift.size), key=lambda i: (-drift[i], i))[:3]
    return AlignStats(float(aligned_pixel_size_angstrom), tuple(float(drift[i]) for i in order),
                      tuple(order), float(np.median(drift)))


@dataclass(frozen=True, slots=True)
class ClassicMotionRecords:
    """Everything classic Appion derives from one MotionCor log (compat §5.4).

    Attributes
    ----------
    positions_px
        (x, y) per rendered frame, motioncorr convention, pixels of the aligned image.
    motioncorr_log
        Text of ``<name>_st_Log.txt``.
    trajectory, stats
        ApDDFrameTrajectoryData and ApDDAlignStatsData values.
    """

    positions_px: tuple[tuple[float, float], ...]
    motioncorr_log: str
    trajectory: FrameTrajectory
    stats: AlignStats


def classic_records_from_log(log: MotionCorLog, *, ft_bin: float, throw_frames: int,
                             aligned_pixel_size_angstrom: float, running_window: int = 1) -> ClassicMotionRecords:
    """Positions, motioncorr-format log, trajectory row and drift statistics from a parsed log."""
    positions = motioncorr_positions_from_shifts(log.shifts_px, ft_bin=ft_bin)
    return ClassicMotionRecords(
        positions_px=tuple((float(x), float(y)) for x, y in positions),
        motioncorr_log=motioncorr_log_text(positions, throw_frames=throw_frames),
        trajectory=frame_trajectory_from_positions(positions),
        stats=align_stats_from_positions(positions, aligned_pixel_size_angstrom=aligned_pixel_size_angstrom,
                                         running_window=running_window),
    )

