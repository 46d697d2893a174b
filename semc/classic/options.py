"""The classic Appion command-line surface shared by every script (compat §4.1): a strict parser.

Every flag classic Appion accepted is accepted here (``--flag=value``, ``--flag value``, unique
prefixes), so myamiweb's command lines run unchanged. A flag given twice with the same value is
accepted (Leginon's auto-run command remaker repeats flags); with different values it is an error
naming both. An unknown flag is an error naming it. Flags that no longer change anything are
accepted, listed in ``--help`` under "accepted, no effect", and reported once in one log line.

`ClassicParser.parse` is pure: argv in, a `ClassicArgs` out (or `ClassicUsageError`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from semc.base.errors import InvalidParameters

__all__ = [
    "SCHEDULER_FLAGS",
    "TILT_MODES",
    "ClassicArgs",
    "ClassicParser",
    "ClassicUsageError",
    "no_effect_report",
    "runname_default",
]

logger = logging.getLogger(__name__)

TILT_MODES = ("notilt", "hightilt", "lowtilt", "minustilt", "plustilt", "all")
#: flags runJob.py consumes (classic apGenericJob exclude list, minus jobid/jobtype which flow to the script)
SCHEDULER_FLAGS = ("--ppn", "--nodes", "--walltime", "--cput", "--queue", "--mem")
_UNSET = object()


class ClassicUsageError(InvalidParameters):
    """A classic command line that cannot be run (unknown flag, bad value, conflicting flags)."""


def runname_default(now: dt.datetime | None = None) -> str:
    """Classic's timestamp run name ``yymmmdd<hour letter><mm>`` (hour 0 = a), e.g. ``26nov23o05``."""
    now = now or dt.datetime.now()
    return f"{now:%y}{now:%b}".lower() + f"{now:%d}{chr(ord('a') + now.hour)}{now:%M}"


class _Once(argparse.Action):
    """Store a value; a repeat must carry the same value (compat §4.2 recommendation)."""

    def __init__(self, option_strings, dest, const=_UNSET, **kwargs):
        self.fixed = const
        if const is not _UNSET:
            kwargs["nargs"] = 0
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        value = self.fixed if self.fixed is not _UNSET else values
        given: dict[str, tuple[str, Any]] = namespace.__dict__.setdefault("_given", {})
        if self.dest in given and given[self.dest][1] != value:
            first, before = given[self.dest]
            raise ClassicUsageError(f"{first} and {option_string} given with different values "
                                    f"({before!r} and {value!r})")
        given[self.dest] = (option_string, value)
        setattr(namespace, self.dest, value)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=34, width=100)


class _Argparse(argparse.ArgumentParser):
    def error(self, message):  # never sys.exit from a parser: a typed error the caller reports
        raise ClassicUsageError(message)


@dataclass(frozen=True, slots=True)
class ClassicArgs:
    """A parsed classic command line: values by dest, which flags were given, and the argv itself."""

    values: dict[str, Any]
    given: dict[str, str]  # dest -> the option string used
    argv: tuple[str, ...]
    no_effect: tuple[str, ...] = field(default=())

    def __getitem__(self, dest: str) -> Any:
        return self.values[dest]

    def was_given(self, dest: str) -> bool:
        return dest in self.given


class ClassicParser:
    """A classic script's options: the global and loop flags of compat §4.1 plus the script's own.

    Parameters
    ----------
    prog, description
        Script name and the text at the top of ``--help``.
    """

    def __init__(self, prog: str, description: str) -> None:
        self.parser = _Argparse(prog=prog, description=description, formatter_class=_HelpFormatter,
                                allow_abbrev=True, add_help=True,
                                usage="%(prog)s --session=NAME --preset=NAME --rundir=DIR [flags] (see below)")
        self.no_effect: dict[str, str] = {}  # dest -> why
        self._groups: dict[str, argparse._ArgumentGroup] = {}
        self._global_flags()

    # --- declaring flags ------------------------------------------------------------------------
    def group(self, title: str) -> argparse._ArgumentGroup:
        if title not in self._groups:
            self._groups[title] = self.parser.add_argument_group(title)
        return self._groups[title]

    def value(self, title: str, *flags: str, dest: str, type=str, default=None, help: str, choices=None) -> None:
        """A flag with a value (``--flag=value``)."""
        self.group(title).add_argument(*flags, dest=dest, action=_Once, type=type, default=default,
                                       choices=choices, help=help + ("" if default is None else f" [{default}]"))

    def switch(self, title: str, on: Sequence[str], off: Sequence[str] = (), *, dest: str, default: bool,
               help: str, help_off: str | None = None) -> None:
        """A boolean with its classic on/off spellings (``--commit`` / ``--no-commit``)."""
        group = self.group(title)
        if on:
            group.add_argument(*on, dest=dest, action=_Once, const=True, default=default,
                               help=help + (" [default]" if default else ""))
        if off:
            group.add_argument(*off, dest=dest, action=_Once, const=False, default=default,
                               help=(help_off or f"opposite of {on[0]}") + ("" if default else " [default]"))

    def ignored(self, *flags: str, dest: str, why: str, takes_value: bool = True) -> None:
        """A classic flag accepted for compatibility that changes nothing in SEMC (warned once)."""
        self.no_effect[dest] = why
        group = self.group("accepted, no effect in SEMC")
        if takes_value:
            group.add_argument(*flags, dest=dest, action=_Once, default=None, help=why)
        else:
            group.add_argument(*flags, dest=dest, action=_Once, const=True, default=None, help=why)

    def _global_flags(self) -> None:
        g = "classic global flags"
        self.value(g, "-n", "--runname", dest="runname",
                   help="run name; must equal the base name of --rundir (default: that base name, else a "
                        "timestamp yymmmdd<hour letter><mm>)")
        self.value(g, "-d", "--description", dest="description", help="free text, recorded with the run")
        self.value(g, "-p", "--projectid", dest="projectid", type=int,
                   help="project id (default: the session's project; must match it when given)")
        self.value(g, "-R", "--rundir", "--outdir", dest="rundir",
                   help="run directory (default: <appion dir>/<session>/<process dir>/<runname>, the appion "
                        "dir derived from the session's image path as classic Appion did)")
        self.switch(g, ["-C", "--commit"], ["--no-commit"], dest="commit", default=True,
                    help="store the results in the database",
                    help_off="dry run: outputs in the run directory only, nothing written to any database "
                             "(per exposure a <filename>_<step>.db.json summary of what would be stored)")
        self.value(g, "--expid", "--expId", dest="expid", type=int, help="session DEF_id (instead of --session)")
        self.value(g, "--nproc", dest="nproc", type=int, help="local cluster: number of worker processes")
        self.value(g, "--jobtype", dest="jobtype",
                   help="job type of the ApAppionJobData row created when there is no --jobid")
        self.value(g, "--jobid", dest="jobid", type=int,
                   help="ApAppionJobData row created by myamiweb: set R at start, D/E at the end "
                        "(its jobtype is never changed)")
        loop = "classic loop flags"
        self.value(loop, "-s", "--session", dest="sessionname", help="session name")
        self.value(loop, "--preset", dest="preset", help="preset name; 'manual' selects images without a preset")
        self.value(loop, "-m", "--mrclist", dest="mrcnames",
                   help="comma list of image file names to process (the web's test image); excludes --preset; "
                        "never waits")
        self.value(loop, "--limit", dest="limit", type=int, help="stop after this many images")
        self.value(loop, "--tiltangle", dest="tiltangle", default="all", choices=TILT_MODES,
                   help="tilt filter on the stage alpha")
        self.value(loop, "--startimgid", dest="startimgid", type=int, help="skip images with a smaller DEF_id")
        self.value(loop, "--endimgid", dest="endimgid", type=int, help="skip images with a larger DEF_id")
        self.switch(loop, ["--continue"], ["--no-continue"], dest="continue_", default=True,
                    help="continue the run: images with results in this run are not redone",
                    help_off="classic: start a fresh done list. SEMC stores each image once per run, so "
                             "this is accepted with a warning; use a new --runname to reprocess")
        self.switch(loop, [], ["--no-wait"], dest="wait", default=True, help="",
                    help_off="exit when no image is left instead of waiting for new ones")
        self.switch(loop, ["--no-rejects"], [], dest="norejects", default=False,
                    help="skip hidden/trashed images and images rejected by the newest assessment "
                         "(classic meaning: without it, rejected images are processed too)")
        self.switch(loop, ["--best-images"], [], dest="bestimages", default=False,
                    help="only images marked exemplar in the viewer or kept by the newest assessment")
        self.switch(loop, ["--reverse"], [], dest="reverse", default=False,
                    help="newest first (default oldest first)")
        for flags, dest, why, value in (
            (("--background",), "background", "quieter output: SEMC logs the same way always", False),
            (("--shuffle",), "shuffle", "random order: the controller orders the work (newest first while live)",
             False),
            (("--parallel",), "parallel", ("several processes on one run dir: the SEMC controller is one "
                                           "process per run dir and already processes in parallel"), False),
            (("--sib-assess",), "sibassess", "sibling's assessment: not used by SEMC", False),
            (("--clean",), "clean", "[S] flag: SEMC keeps no intermediates to clean", False),
            (("--no-clean",), "noclean", "[S] flag: SEMC keeps no intermediates to clean", False),
            (("--clusterconfig",), "clusterconfig", ("[S-dask] flag: the cluster comes from Dask's "
                                                     "configuration (semc.cluster) and --cluster"), True),
        ):
            self.ignored(*flags, dest=dest, why=why, takes_value=value)
        for flag in SCHEDULER_FLAGS:
            self.ignored(flag, dest=flag[2:], why="scheduler flag of runJob.py (it strips it before the script "
                                                   "runs)")
        s = "SEMC options"
        self.value(s, "--cluster", dest="cluster",
                   help="local, slurm, or a scheduler address tcp://host:8786 (default: Dask config semc.cluster)")
        self.value(s, "--max-in-flight", dest="max_in_flight", type=int,
                   help="cap on images in flight (default: twice the workers)")
        self.value(s, "--max-attempts", dest="max_attempts", type=int, default=3,
                   help="failed attempts before an image is quarantined")
        self.value(s, "--poll-interval", dest="poll_interval", type=float, default=1.0,
                   help="seconds between polls of the database")
        self.group(s).add_argument("-v", "--verbose", dest="verbose", action="count", default=0,
                                   help="more log output (-vv: debug)")

    # --- parsing ----------------------------------------------------------------------------------
    def parse(self, argv: Sequence[str]) -> ClassicArgs:
        """Parse a classic command line; unknown flags and conflicting repeats raise `ClassicUsageError`."""
        argv = list(argv)
        namespace, rest = self.parser.parse_known_args(argv)
        if rest:
            unknown = [a for a in rest if a.startswith("-")] or rest
            raise ClassicUsageError(f"unknown flag {unknown[0].split('=', 1)[0]} (in {' '.join(rest)!r}); "
                                    f"see {self.parser.prog} --help")
        given = {dest: option for dest, (option, _) in namespace.__dict__.pop("_given", {}).items()}
        values = vars(namespace)
        no_effect = tuple(given[d] for d in self.no_effect if d in given)
        return ClassicArgs(values=values, given=given, argv=tuple(argv), no_effect=no_effect)

    def format_help(self) -> str:
        return self.parser.format_help()


_reported: set[str] = set()


def no_effect_report(prog: str, args: ClassicArgs, extra: Sequence[str] = ()) -> list[str]:
    """Log, once per process and flag, the flags given that change nothing; returns those newly reported."""
    new = [f for f in (*args.no_effect, *extra) if f not in _reported]
    if new:
        _reported.update(new)
        logger.warning("%s: accepted without effect in SEMC (see --help): %s", prog, " ".join(new))
    return new


def rundir_default(image_path: str, *, session: str, process_dir: str, runname: str) -> str:
    """Classic's run directory from the session image path: ``.../leginon/<session>/rawdata`` →
    ``.../appion/<session>/<process_dir>/<runname>``.

    Raises
    ------
    ClassicUsageError
        When the image path does not have the Leginon layout (then --rundir must be given).
    """
    parts = os.path.normpath(image_path).split(os.sep)
    if "leginon" not in parts:
        raise ClassicUsageError(f"cannot derive the run directory from image path {image_path!r}: give --rundir")
    index = len(parts) - 1 - parts[::-1].index("leginon")
    base = os.sep.join(parts[:index] + ["appion"])
    return os.path.join(base or os.sep, session, process_dir, runname)
