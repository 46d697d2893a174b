"""CTFFIND 4.1's interactive protocol (and CTFFIND 5's extra prompts), spoken by ``semc-ctffind``.

The prompts are asked in CTFFIND's order (``appion-compat.md`` §5.6), one answer
per line, so the same code serves a terminal (pexpect) and a here-document. An
empty answer takes the default shown in brackets. A bad answer raises
:class:`ProtocolError` with a CTFFIND-like message; the caller exits non-zero.

CTFFIND's ``--old-school-input`` (CTFFIND 3's stdin format) and
``--old-school-input-ctffind4`` (two more lines for movies and phase shifts) are read
by :func:`ctffind_old_school_read`: no prompts, comma-separated numbers on fixed lines
(:data:`OLD_SCHOOL_LINES`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

__all__ = ["OLD_SCHOOL_LINES", "CtffindAnswers", "PromptReader", "ProtocolError", "ctffind_answers_read", "ctffind_old_school_read"]


class ProtocolError(Exception):
    """A bad or missing answer (message in CTFFIND's words)."""


@dataclass(frozen=True, slots=True)
class CtffindAnswers:
    """Everything the prompts collected (units as in the prompts: Å, kV, mm, rad)."""

    input_path: str
    input_is_movie: bool
    frames_to_average: int
    diagnostic_path: str
    pixel_size_angstrom: float
    voltage_kv: float
    spherical_aberration_mm: float
    amplitude_contrast: float
    box_size: int
    min_resolution_angstrom: float
    max_resolution_angstrom: float
    min_defocus_angstrom: float
    max_defocus_angstrom: float
    defocus_step_angstrom: float
    known_astigmatism_angstrom: float | None
    known_astigmatism_azimuth_degree: float | None
    exhaustive_search: bool
    astigmatism_restraint_angstrom: float | None
    find_phase_shift: bool
    min_phase_shift_radian: float
    max_phase_shift_radian: float
    phase_shift_step_radian: float
    resample: bool
    target_pixel_size_angstrom: float
    threads: int
    determine_tilt: bool = False


class _LineSource:
    """Lines of the answers stream, with a non-blocking look at the lines already sent.

    A here-document or a pipe is read from its file descriptor without Python's
    buffering, so that :meth:`available` sees exactly what the client has sent.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._pending = b""
        self._eof = False
        try:
            self._fd: int | None = stream.fileno() if not stream.isatty() else None
        except (AttributeError, OSError, ValueError):
            self._fd = None

    def _pull(self, *, block: bool) -> None:
        import os
        import select

        while not self._eof:
            if not block and not select.select([self._fd], [], [], 0.2)[0]:
                return
            chunk = os.read(self._fd, 65536)
            if not chunk:
                self._eof = True
                if self._pending:
                    self._lines.append(self._pending.decode(errors="replace"))
                    self._pending = b""
                return
            self._pending += chunk
            *complete, self._pending = self._pending.split(b"\n")
            self._lines.extend(line.decode(errors="replace") + "\n" for line in complete)
            if block and self._lines:
                return

    def readline(self) -> str:
        if self._fd is None:
            return self._lines.pop(0) if self._lines else self._stream.readline()
        if not self._lines:
            self._pull(block=True)
        return self._lines.pop(0) if self._lines else ""

    def available(self) -> list[str]:
        """Lines already sent and not yet read (never waits for a client that waits for us)."""
        if self._fd is None:
            if not self._stream.isatty():
                self._lines.extend(self._stream.readlines())
        else:
            self._pull(block=False)
        return [line.strip() for line in self._lines]


class PromptReader:
    """Print a prompt, read one line; typed helpers check the answer."""

    def __init__(self, stdin: TextIO, stdout: TextIO) -> None:
        self._in, self._out = _LineSource(stdin), stdout
        self._echo = not stdin.isatty()

    def available(self) -> list[str]:
        """Answers already waiting on the input (stripped), without consuming them."""
        return self._in.available()

    def text(self, prompt: str, default: str) -> str:
        self._out.write(f"{prompt} [{default}]".ljust(50) + " : ")
        self._out.flush()
        line = self._in.readline()
        if line == "":
            self._out.write("\n")
            raise ProtocolError(f"Error: end of input while waiting for an answer to \"{prompt}\"")
        answer = line.strip()
        if self._echo:  # echo here-document answers, as a terminal would show them
            self._out.write(answer + "\n")
        return answer or default

    def number(self, prompt: str, default: float, *, minimum: float = -math.inf, maximum: float = math.inf) -> float:
        answer = self.text(prompt, str(default))
        try:
            value = float(answer)
        except ValueError:
            raise ProtocolError(f"Error: \"{answer}\" is not a valid number (answer to \"{prompt}\")") from None
        if not math.isfinite(value) or not minimum <= value <= maximum:
            raise ProtocolError(f"Error: {answer} is out of range [{minimum:g}, {maximum:g}] for \"{prompt}\"")
        return value

    def integer(self, prompt: str, default: int, *, minimum: int = 1, maximum: int = 10**9) -> int:
        value = self.number(prompt, default, minimum=minimum, maximum=maximum)
        if value != int(value):
            raise ProtocolError(f"Error: \"{value:g}\" is not a valid integer (answer to \"{prompt}\")")
        return int(value)

    def yes_no(self, prompt: str, default: bool) -> bool:
        answer = self.text(prompt, "Yes" if default else "No").lower()
        if answer in ("y", "yes", "t", "true", "1"):
            return True
        if answer in ("n", "no", "f", "false", "0"):
            return False
        raise ProtocolError(f"Error: \"{answer}\" is not a valid yes/no answer (answer to \"{prompt}\")")


def _input_file(reader: PromptReader, count_sections) -> tuple[str, bool, int]:
    path = reader.text("Input image file name", "input.mrc")
    if not Path(path).is_file():
        raise ProtocolError(f"Error: input file {path} does not exist or is not a file")
    movie, frames = False, 1
    if count_sections(path) > 1:
        movie = reader.yes_no("Input is a movie (stack of frames)", False)
        if movie:
            frames = reader.integer("Number of frames to average together", 1)
    return path, movie, frames


def _astigmatism(reader: PromptReader) -> dict:
    out = {"known_astigmatism_angstrom": None, "known_astigmatism_azimuth_degree": None,
           "exhaustive_search": False, "astigmatism_restraint_angstrom": None}
    if reader.yes_no("Do you know what astigmatism is present?", False):
        out["known_astigmatism_angstrom"] = reader.number("Known astigmatism", 0.0, minimum=0.0)
        out["known_astigmatism_azimuth_degree"] = reader.number("Known astigmatism angle", 0.0, minimum=-360.0, maximum=360.0)
        return out
    out["exhaustive_search"] = reader.yes_no("Slower, more exhaustive search?", False)
    if reader.yes_no("Use a restraint on astigmatism?", False):
        out["astigmatism_restraint_angstrom"] = reader.number("Expected (tolerated) astigmatism", 200.0, minimum=1e-3)
    return out


def _phase_shift(reader: PromptReader) -> dict:
    out = {"find_phase_shift": False, "min_phase_shift_radian": 0.0, "max_phase_shift_radian": 3.15, "phase_shift_step_radian": 0.5}
    if reader.yes_no("Find additional phase shift?", False):
        out["find_phase_shift"] = True
        out["min_phase_shift_radian"] = reader.number("Minimum phase shift (rad)", 0.0, minimum=-math.pi * 4, maximum=math.pi * 4)
        out["max_phase_shift_radian"] = reader.number("Maximum phase shift (rad)", 3.15, minimum=-math.pi * 4, maximum=math.pi * 4)
        out["phase_shift_step_radian"] = reader.number("Phase shift search step", 0.5, minimum=1e-4)
        if out["max_phase_shift_radian"] < out["min_phase_shift_radian"]:
            raise ProtocolError("Error: maximum phase shift is smaller than minimum phase shift")
    return out


def _ctffind5_extras(reader: PromptReader) -> bool:
    """CTFFIND 5's tilt and thickness questions; returns whether the sample tilt is wanted."""
    tilt = reader.yes_no("Determine sample tilt?", False)
    if reader.yes_no("Determine samnple thickness?", False):
        raise ProtocolError("Error: sample thickness determination is not supported by semc-ctffind")
    return tilt


def _expert(reader: PromptReader, *, movie: bool, ctffind5: bool) -> dict:
    out = {"resample": True, "target_pixel_size_angstrom": 1.4, "threads": 1}
    if not reader.yes_no("Do you want to set expert options?", False):
        return out
    if movie:
        if reader.yes_no("Correct Movie Mag. Distortion?", False):
            raise ProtocolError("Error: magnification distortion correction is not supported by semc-ctffind")
        if not reader.yes_no("Movie is gain-corrected?", True):
            raise ProtocolError("Error: gain correction of movies is not supported by semc-ctffind; give a gain-corrected movie")
        if not reader.yes_no("Movie is dark-subtracted?", True):
            raise ProtocolError("Error: dark subtraction of movies is not supported by semc-ctffind")
    out["resample"] = reader.yes_no("Resample micrograph if pixel size too small?", True)
    if ctffind5 and out["resample"]:
        out["target_pixel_size_angstrom"] = reader.number("Target pixel size after resampling", 1.4, minimum=1e-3)
    if reader.yes_no("Do you already know the defocus?", False):
        raise ProtocolError("Error: a known defocus is not supported by semc-ctffind")
    if ctffind5:
        reader.yes_no("Weight down low resolution signal?", True)
    out["threads"] = reader.integer("Desired number of parallel threads", 1, minimum=1, maximum=1024)
    return out


_NO = ("n", "no", "f", "false", "0")


def _looks_like_ctffind5(waiting: list[str]) -> bool:
    """CTFFIND 5 answers after the phase-shift block: "no" to tilt and thickness, then the expert answer.

    CTFFIND 4.1 expects only the expert answer there; a "no" to it followed by more
    non-empty answers can only be CTFFIND 5's "tilt? no / thickness? no / expert? ...".
    """
    answers = [a.lower() for a in waiting if a]
    return len(answers) >= 3 and answers[0] in _NO and answers[1] in _NO


def ctffind_answers_read(reader: PromptReader, *, count_sections, ctffind5: bool = False) -> CtffindAnswers:
    """Ask CTFFIND's prompts in order and collect the answers.

    Parameters
    ----------
    reader
        Where prompts go and answers come from.
    count_sections
        Callable(path) -> number of sections of the input (the movie question is asked when > 1).
    ctffind5
        Also ask CTFFIND 5's prompts (sample tilt, thickness, target pixel, low-resolution weighting).
        Without it they are still asked when the answers already waiting on a non-terminal input
        can only be CTFFIND 5's (see :func:`_looks_like_ctffind5`).

    Raises
    ------
    ProtocolError
        On a missing or bad answer.
    """
    path, movie, frames = _input_file(reader, count_sections)
    diagnostic = reader.text("Output diagnostic image file name", "diagnostic_output.mrc")
    values = {
        "pixel_size_angstrom": reader.number("Pixel size", 1.0, minimum=1e-3, maximum=100.0),
        "voltage_kv": reader.number("Acceleration voltage", 300.0, minimum=1.0, maximum=3000.0),
        "spherical_aberration_mm": reader.number("Spherical aberration", 2.7, minimum=0.0, maximum=100.0),
        "amplitude_contrast": reader.number("Amplitude contrast", 0.07, minimum=0.0, maximum=0.999),
        "box_size": reader.integer("Size of amplitude spectrum to compute", 512, minimum=64, maximum=16384),
        "min_resolution_angstrom": reader.number("Minimum resolution", 30.0, minimum=1e-3),
        "max_resolution_angstrom": reader.number("Maximum resolution", 5.0, minimum=1e-3),
        "min_defocus_angstrom": reader.number("Minimum defocus", 5000.0, minimum=-1e6, maximum=1e7),
        "max_defocus_angstrom": reader.number("Maximum defocus", 50000.0, minimum=-1e6, maximum=1e7),
        "defocus_step_angstrom": reader.number("Defocus search step", 100.0, minimum=1e-3),
    }
    values.update(_astigmatism(reader))
    values.update(_phase_shift(reader))
    ctffind5 = ctffind5 or _looks_like_ctffind5(reader.available())
    if ctffind5:
        values["determine_tilt"] = _ctffind5_extras(reader)
    values.update(_expert(reader, movie=movie, ctffind5=ctffind5))
    return CtffindAnswers(input_path=path, input_is_movie=movie, frames_to_average=frames, diagnostic_path=diagnostic, **values)


#: CTFFIND's old-school input, line by line: (what the line holds, names of its comma-separated
#: numbers or ``None`` for a file name). ``--old-school-input`` reads lines 1-4,
#: ``--old-school-input-ctffind4`` lines 1-6.
OLD_SCHOOL_LINES: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("input image file name", None),
    ("output diagnostic file name", None),
    ("CS[mm], HT[kV], AmpCnst, XMAG, DStep[um]", ("CS[mm]", "HT[kV]", "AmpCnst", "XMAG", "DStep[um]")),
    ("Box, ResMin[A], ResMax[A], dFMin[A], dFMax[A], FStep[A], dAst[A]",
     ("Box", "ResMin[A]", "ResMax[A]", "dFMin[A]", "dFMax[A]", "FStep[A]", "dAst[A]")),
    ("input is a movie, number of frames to average", ("input is a movie", "number of frames to average")),
    ("find phase shift, minimum, maximum, step [rad]",
     ("find phase shift", "minimum phase shift", "maximum phase shift", "phase shift step")),
)


def _old_school_line(source: _LineSource, number: int) -> str:
    line = source.readline()
    if line == "":
        raise ProtocolError(f"Error: end of input: line {number} of the old-school input "
                            f"({OLD_SCHOOL_LINES[number - 1][0]}) is missing")
    return line.rstrip("\r\n")


def _old_school_numbers(line: str, number: int) -> list[float]:
    """The comma-separated numbers of an old-school line, as CTFFIND's tokenizer counts them.

    Text after a "!" is ignored (CTFFIND 3 scripts comment their lines that way); one empty
    token after a trailing comma is dropped, as wxWidgets' tokenizer does.
    """
    names = OLD_SCHOOL_LINES[number - 1][1]
    tokens = line.split("!", 1)[0].split(",")
    if len(tokens) > 1 and not tokens[-1].strip():
        tokens.pop()
    if not line.split("!", 1)[0].strip():
        tokens = []
    if len(tokens) != len(names):
        raise ProtocolError(f"Error: Bad number of arguments ({len(tokens)}, expected {len(names)}) in line {number} of input")
    values = []
    for token, name in zip(tokens, names, strict=True):
        try:
            value = float(token)
        except ValueError:
            raise ProtocolError(f"Error: \"{token.strip()}\" is not a valid number ({name}, line {number} of input)") from None
        if not math.isfinite(value):
            raise ProtocolError(f"Error: {token.strip()} is not a finite number ({name}, line {number} of input)")
        values.append(value)
    return values


def _old_school_movie_and_phase(source: _LineSource) -> dict:
    movie_flag, frames = _old_school_numbers(_old_school_line(source, 5), 5)
    movie = int(movie_flag) != 0
    find, low, high, step = _old_school_numbers(_old_school_line(source, 6), 6)
    out = {"input_is_movie": movie, "frames_to_average": int(frames) if movie else 1, "find_phase_shift": int(find) != 0,
           "min_phase_shift_radian": 0.0, "max_phase_shift_radian": 3.15, "phase_shift_step_radian": 0.5}
    if movie and out["frames_to_average"] < 1:
        raise ProtocolError(f"Error: number of frames to average must be at least 1, got {frames:g} (line 5 of input)")
    if out["find_phase_shift"]:
        if low > high:
            raise ProtocolError(f"Error: Minimum phase shift ({low:f}) cannot be greater than maximum phase shift ({high:f})")
        out.update(min_phase_shift_radian=low, max_phase_shift_radian=high, phase_shift_step_radian=step)
    return out


def ctffind_old_school_read(stream: TextIO, *, ctffind4: bool, count_sections) -> tuple[CtffindAnswers, tuple[float, float]]:
    """Read CTFFIND's ``--old-school-input`` (or ``--old-school-input-ctffind4``) lines from ``stream``.

    Line 1 the input file, line 2 the diagnostic file, line 3 ``CS[mm], HT[kV], AmpCnst, XMAG,
    DStep[um]`` (pixel size = DStep * 10000 / XMAG Å), line 4 ``Box, ResMin[A], ResMax[A],
    dFMin[A], dFMax[A], FStep[A], dAst[A]`` (dAst <= 0: no astigmatism restraint, as CTFFIND
    reads RELION's 0). With ``ctffind4``, line 5 ``is_movie, frames_to_average`` and line 6
    ``find_phase_shift, min, max, step`` (rad); flags are numbers, non-zero meaning yes. As in
    CTFFIND, the search is the fast one, astigmatism is searched, micrographs are resampled
    when their pixel is small, and one thread is used (``-j`` overrides).

    Parameters
    ----------
    stream
        The answers (here-document or pipe).
    ctffind4
        Read lines 5 and 6 too.
    count_sections
        Callable(path) -> number of sections of the input.

    Returns
    -------
    answers : CtffindAnswers
        What the lines say, in the interactive protocol's terms.
    magnification_and_step : tuple
        (XMAG, DStep in µm) of line 3, for CTFFIND's echo of that line.

    Raises
    ------
    ProtocolError
        On a missing line, a wrong number of values, a value that is not a number, a missing
        input file, a stack without movie processing, or frames/phase ranges CTFFIND refuses.
    """
    source = _LineSource(stream)
    path = _old_school_line(source, 1).strip()
    diagnostic = _old_school_line(source, 2).strip()
    if not diagnostic:
        raise ProtocolError("Error: the output diagnostic file name (line 2 of input) is empty")
    cs, kv, amplitude_contrast, magnification, detector_step = _old_school_numbers(_old_school_line(source, 3), 3)
    if magnification <= 0 or detector_step <= 0:
        raise ProtocolError(f"Error: XMAG ({magnification:g}) and DStep ({detector_step:g}) must be positive "
                            "(pixel size = DStep * 10000 / XMAG)")
    box, min_res, max_res, min_defocus, max_defocus, defocus_step, tolerance = _old_school_numbers(_old_school_line(source, 4), 4)
    if box != int(box):
        raise ProtocolError(f"Error: \"{box:g}\" is not a valid integer (Box, line 4 of input)")
    extra = {"input_is_movie": False, "frames_to_average": 1, "find_phase_shift": False,
             "min_phase_shift_radian": 0.0, "max_phase_shift_radian": 3.15, "phase_shift_step_radian": 0.5}
    if ctffind4:
        extra = _old_school_movie_and_phase(source)
    if not Path(path).is_file():
        raise ProtocolError(f"Error: input file {path} does not exist or is not a file")
    sections = count_sections(path)
    if extra["input_is_movie"] and sections < extra["frames_to_average"]:
        raise ProtocolError(f"Error: Input stack has {sections} images, so you cannot average "
                            f"{extra['frames_to_average']} frames together")
    if not extra["input_is_movie"] and sections > 1:
        raise ProtocolError("Error: Input stacks are only supported --old-school-input-ctffind4 if doing movie processing")
    answers = CtffindAnswers(
        input_path=path, diagnostic_path=diagnostic, pixel_size_angstrom=detector_step * 10000.0 / magnification,
        voltage_kv=kv, spherical_aberration_mm=cs, amplitude_contrast=amplitude_contrast, box_size=int(box),
        min_resolution_angstrom=min_res, max_resolution_angstrom=max_res, min_defocus_angstrom=min_defocus,
        max_defocus_angstrom=max_defocus, defocus_step_angstrom=defocus_step, known_astigmatism_angstrom=None,
        known_astigmatism_azimuth_degree=None, exhaustive_search=False,
        astigmatism_restraint_angstrom=tolerance if tolerance > 0 else None, resample=True, target_pixel_size_angstrom=1.4,
        threads=1, **extra,
    )
    return answers, (magnification, detector_step)
