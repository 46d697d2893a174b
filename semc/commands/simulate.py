"""``semc simulate movie|session|tiltseries``: synthetic data with ground truth (semc.simulation.cli).

``semc simulate session`` writes the files *and* the Leginon rows into the configured SEMC
databases (``--files-only`` to skip the rows); ``--root`` defaults to ``$SEMC_HOME/sessions``.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("arguments", nargs=argparse.REMAINDER,
                        help="movie|session|tiltseries and their options (semc simulate session --help)")


def run(args: argparse.Namespace) -> int:
    from semc.simulation.cli import main as simulate_main

    argv = list(args.arguments)
    if argv[:1] == ["session"] and "--files-only" not in argv and not {"-h", "--help"} & set(argv):
        from semc.cli import django_setup

        django_setup()
        from django.conf import settings

        from semc.commands.init_databases import databases_init

        if not settings.SEMC_CONFIG.attached:
            databases_init()  # idempotent: a fresh home gets its databases
        if not any(a == "--root" or a.startswith("--root=") for a in argv):
            argv += ["--root", str(settings.SEMC_HOME / "sessions")]
    return simulate_main(argv)
