"""MotionCor2 1.6 / MotionCor3 command line: a pure parser with MotionCor3's defaults.

Flags are matched case-insensitively (RELION 3.1 sends ``-Kv``). Each flag takes
the values that follow it up to the next flag; a value may also hold several
numbers separated by blanks (``-Bft "500 100"``), which are split. An unknown
flag, a missing or non-numeric value or too many values raises
`InvalidParameters` naming the flag. Defaults are MotionCor3 1.2.1's code
defaults (``CInput.cpp``), not its help text: ``-Iter 15``, ``-Tol 0.1``,
``-Bft 500 100``, ``-Group 1 4``, ``-FmRef -1``, ``-GpuMemUsage 0.75``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from semc.base.errors import InvalidParameters

__all__ = ["FLAGS", "MotionCor2Args", "parse_motioncor2_argv", "format_parameter_echo"]

_STEP = "motioncorrection"

# name: (type, min values, max values, default)
FLAGS: dict[str, tuple[str, int, int, Any]] = {
    "InMrc": ("str", 1, 1, ""),
    "InTiff": ("str", 1, 1, ""),
    "InEer": ("str", 1, 1, ""),
    "InSuffix": ("str", 1, 1, ""),
    "OutMrc": ("str", 1, 1, ""),
    "ArcDir": ("str", 1, 1, ""),
    "FullSum": ("str", 1, 1, ""),
    "Gain": ("str", 1, 1, ""),
    "Dark": ("str", 1, 1, ""),
    "DefectFile": ("str", 1, 1, ""),
    "DefectMap": ("str", 1, 1, ""),
    "InAln": ("str", 1, 1, ""),
    "OutAln": ("str", 1, 1, ""),
    "TmpFile": ("str", 1, 1, ""),
    "LogDir": ("str", 1, 1, ""),
    "LogFile": ("str", 1, 1, ""),
    "FmIntFile": ("str", 1, 1, ""),
    "Serial": ("int", 1, 1, [0]),
    "EerSampling": ("int", 1, 1, [1]),
    "Patch": ("int", 1, 3, [0, 0, 0]),
    "Iter": ("int", 1, 1, [15]),
    "Tol": ("float", 1, 1, [0.1]),
    "Bft": ("float", 1, 2, [500.0, 100.0]),
    "PhaseOnly": ("int", 1, 1, [0]),
    "FtBin": ("float", 1, 1, [1.0]),
    "InitDose": ("float", 1, 1, [0.0]),
    "FmDose": ("float", 1, 1, [0.0]),
    "PixSize": ("float", 1, 1, [0.0]),
    "kV": ("float", 1, 1, [300.0]),
    "Cs": ("float", 1, 1, [0.0]),
    "AmpCont": ("float", 1, 1, [0.07]),
    "ExtPhase": ("float", 1, 2, [0.0, 0.0]),
    "Throw": ("int", 1, 1, [0]),
    "Trunc": ("int", 1, 1, [0]),
    "SumRange": ("float", 2, 2, [3.0, 25.0]),
    "SplitSum": ("int", 1, 1, [0]),
    "Group": ("int", 1, 2, [1, 4]),
    "FmRef": ("int", 1, 1, [-1]),
    "OutStack": ("int", 1, 2, [0, 1]),
    "RotGain": ("int", 1, 1, [0]),
    "FlipGain": ("int", 1, 1, [0]),
    "InvGain": ("int", 1, 1, [0]),
    "Align": ("int", 1, 1, [1]),
    "Tilt": ("float", 1, 2, [0.0, 0.0]),
    "Mag": ("float", 1, 3, [1.0, 1.0, 0.0]),
    "InFmMotion": ("int", 1, 1, [0]),
    "Crop": ("int", 1, 2, [0, 0]),
    "StackZ": ("int", 1, 1, [0]),
    "Gpu": ("int", 1, 64, [0]),
    "UseGpus": ("int", 1, 1, [1]),
    "GpuMemUsage": ("float", 1, 1, [0.75]),
    "OutStar": ("int", 1, 1, [0]),
    "TiffOrder": ("int", 1, 1, [1]),
    "CorrInterp": ("int", 1, 1, [0]),
    "InSkips": ("str", 1, 1, ""),
    # SEMC extension: which stdout table to print ("1.6.4" or "1.5.0"; RELION 3.1 reads 1.5.0)
    "LogFormat": ("str", 1, 1, ""),
}
_LOWER = {k.lower(): k for k in FLAGS}
_FLAG_RE = re.compile(r"^-[A-Za-z]")


@dataclass(frozen=True, slots=True)
class MotionCor2Args:
    """Parsed command line: every flag's value (defaults filled) and which flags were given."""

    values: dict[str, Any] = field(default_factory=dict)
    given: frozenset[str] = frozenset()

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def first(self, name: str) -> Any:
        v = self.values[name]
        return v[0] if isinstance(v, list) else v


def _bad(message: str) -> InvalidParameters:
    return InvalidParameters(message, step=_STEP)


def _convert(name: str, tokens: list[str]) -> Any:
    kind, lo, hi, default = FLAGS[name]
    if kind == "str":
        if len(tokens) != 1:
            raise _bad(f"-{name} takes one value, got {len(tokens)}: {tokens!r}")
        return tokens[0]
    words = [w for t in tokens for w in t.split()]
    if not lo <= len(words) <= hi:
        raise _bad(f"-{name} takes {lo}..{hi} value(s), got {len(words)}: {tokens!r}")
    try:
        vals = [int(w) if kind == "int" else float(w) for w in words]
    except ValueError:
        raise _bad(f"-{name} needs {kind} values, got {tokens!r}") from None
    return vals + list(default[len(vals):])


def parse_motioncor2_argv(argv: list[str]) -> MotionCor2Args:
    """Parse a MotionCor2/MotionCor3 argument list (without the program name).

    Raises
    ------
    InvalidParameters
        On an unknown flag, a stray value, or malformed values; the message names the flag.
    """
    values: dict[str, Any] = {k: (list(v[3]) if isinstance(v[3], list) else v[3]) for k, v in FLAGS.items()}
    given: set[str] = set()
    i = 0
    while i < len(argv):
        tok = argv[i]
        if not _FLAG_RE.match(tok):
            raise _bad(f"unexpected value {tok!r} (not after a flag)")
        name = _LOWER.get(tok[1:].lower())
        if name is None:
            raise _bad(f"unknown flag {tok}")
        j = i + 1
        while j < len(argv) and not _FLAG_RE.match(argv[j]):
            j += 1
        if j == i + 1:
            raise _bad(f"flag {tok} needs a value")
        values[name] = _convert(name, argv[i + 1 : j])
        given.add(name)
        i = j
    if sum(bool(values[k]) for k in ("InMrc", "InTiff", "InEer")) != 1:
        raise _bad("give exactly one of -InMrc, -InTiff, -InEer")
    if not values["OutMrc"]:
        raise _bad("-OutMrc is required")
    return MotionCor2Args(values=values, given=frozenset(given))


def _fmt(name: str, value: Any) -> str:
    kind = FLAGS[name][0]
    if kind == "str":
        return str(value)
    if kind == "int":
        return "  ".join(str(v) for v in value)
    return "  ".join(f"{v:.2f}" for v in value)


def format_parameter_echo(args: MotionCor2Args) -> str:
    """The ``-Flag   value`` block MotionCor prints first (16-wide flag column)."""
    lines = [f"{'-' + name:<17}{_fmt(name, args.values[name])}" for name in FLAGS if name != "LogFormat"]
    return "\n".join(lines) + "\n"
