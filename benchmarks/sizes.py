"""The benchmarks' common size interface: ``--size ci|realistic`` picks each script's defaults.

``realistic`` is the size the figures in RESULTS.md are quoted at (full K3 and EER movies, a 100,000-exposure
session, a 100-exposure live replay); ``ci`` is small enough to run the whole suite in minutes on the 2-core
CI machine. An option given explicitly on the command line wins over the size's default::

    python benchmarks/bench_io.py --size ci                 # the ci defaults
    python benchmarks/bench_io.py --size ci --repeats 5     # the ci defaults, five repeats

``benchmarks/run.py --size ci|realistic`` runs every script at one size.
"""

from __future__ import annotations

import argparse
from typing import Any

SIZES = ("ci", "realistic")


def size_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--size`` (default ``realistic``, the size the published figures use)."""
    parser.add_argument("--size", choices=SIZES, default="realistic",
                        help="ci: small inputs, minutes for the whole suite; realistic: full-size inputs "
                             "(default). Explicit options override the size's defaults")


def size_apply(args: argparse.Namespace, defaults: dict[str, dict[str, Any]]) -> argparse.Namespace:
    """Fill every option left at None with the chosen size's default; returns ``args``."""
    for key, value in defaults[args.size].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def standalone_home_setup(home) -> None:
    """Point SEMC at a fresh standalone home (SQLite, no config file), set Django up and create the databases."""
    import os

    os.environ.update(SEMC_HOME=str(home), SEMC_CONFIG="none", SEMC_MODE="standalone",
                      DJANGO_SETTINGS_MODULE="semc.settings")
    import django

    django.setup()
    from semc.commands.init_databases import databases_init

    databases_init()


def figure_table_emit(title: str, command: str, rows: list[str], out: str | None) -> str:
    """The ``| what | figure |`` markdown block of a benchmark (command, machine, time), printed and
    appended to ``out`` when given; returns the text."""
    import os
    import platform
    import time

    text = "\n".join([f"### {title}", "", (f"`{command}` on {platform.node()} ({os.cpu_count()} CPUs), "
                                           f"{time.strftime('%Y-%m-%d %H:%M')}"), "",
                      "| what | figure |", "|---|---|", *rows, ""])
    print(text)
    if out:
        with open(out, "a") as handle:
            handle.write(text + "\n")
    return text
