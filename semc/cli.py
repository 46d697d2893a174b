"""The ``semc`` command: one entry point with subcommands.

``semc init`` creates the data directory and the databases, ``semc config``
prints the effective configuration; the other subcommands (``simulate``,
``loop``, ``web``, ``demo``, ...) are registered by their own modules in
:data:`SUBCOMMANDS` and imported only when used, so that ``semc --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from django.core.exceptions import ImproperlyConfigured

from semc import __version__
from semc.base.errors import ProcessingError

__all__ = ["main", "build_parser", "SUBCOMMANDS"]

logger = logging.getLogger(__name__)

#: subcommand -> (module with add_arguments(parser) and run(args) -> int, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "init": ("semc.commands.init", "create the data directory and the databases (run once)"),
    "config": ("semc.commands.config", "print the effective configuration (secrets masked)"),
    "simulate": ("semc.commands.simulate", "simulate movies, Leginon sessions and tilt series with ground truth"),
    "loop": ("semc.commands.loop", "process a session: motion correction and CTF estimation, streaming"),
    "demo": ("semc.commands.demo", "simulate a live session and process it end to end, with a summary"),
    "web": ("semc.commands.web", "serve the dashboard, the API and the admin"),
    "token": ("semc.commands.token", "create, list and revoke API tokens"),
    "supervise": ("semc.commands.supervise", "carry out start/stop/resume requests from the API, one loop per session"),
    "watch": ("semc.commands.watch", "watch EPU/SerialEM session folders and register their exposures"),
    "events": ("semc.commands.events", "publish result events and quality-control verdicts to a message broker"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semc",
        description="SEMC: elastic cryo-EM pre-processing for Leginon/Appion databases.",
    )
    parser.add_argument("--version", action="version", version=f"semc {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def logging_configure(verbosity: int) -> None:
    """Configure log handlers once, for the whole process."""
    level = logging.WARNING - 10 * min(verbosity + 1, 2)
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("distributed").setLevel(max(level, logging.WARNING))


def django_setup() -> None:
    """Set up Django once (the controller and CLIs only; never inside a Dask task)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "semc.settings")
    import django

    django.setup()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    head, rest = _split_command(argv)
    args = parser.parse_args(head)
    if not args.command:
        parser.print_help()
        return 2
    logging_configure(args.verbose)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    sub = argparse.ArgumentParser(prog=f"semc {args.command}", description=SUBCOMMANDS[args.command][1])
    module.add_arguments(sub)
    sub_args = sub.parse_args(rest)
    try:
        return int(module.run(sub_args) or 0)
    except ProcessingError as exc:
        print(f"semc {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except ImproperlyConfigured as exc:  # a configuration error raised while Django read its settings
        print(f"semc {args.command}: configuration error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"semc {args.command}: interrupted", file=sys.stderr)
        return 130


def _split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split global options + command name from the subcommand's own arguments."""
    for index, token in enumerate(argv):
        if token in SUBCOMMANDS:
            return argv[: index + 1], argv[index + 1:]
    return argv, []
