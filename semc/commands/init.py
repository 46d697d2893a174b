"""``semc init``: create the data directory and the databases.

Standalone mode: migrates SEMC's state database and creates the classic
Leginon, project and Appion tables (and a default project whose Appion
database is the configured one). Attached mode: migrates SEMC's state database
only, and checks that the facility's databases answer; no DDL touches them.
"""

from __future__ import annotations

import argparse
import logging

from semc.cli import django_setup

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-default-project", action="store_true",
                        help="standalone: do not create the default project")


def run(args: argparse.Namespace) -> int:
    django_setup()
    from django.conf import settings

    from semc.commands.init_databases import databases_init

    report = databases_init(create_default_project=not args.no_default_project)
    print(f"SEMC home: {settings.SEMC_HOME}")
    for line in report:
        print(line)
    return 0
