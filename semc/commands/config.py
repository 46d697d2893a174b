"""``semc config``: print the effective configuration, where each value was read, secrets masked."""

from __future__ import annotations

import argparse

from semc.config import config_lines, config_load


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--show-secrets", action="store_true", help="print passwords and keys in clear")


def run(args: argparse.Namespace) -> int:
    config = config_load()
    print(f"# configuration file: {config.config_file or '(none)'}")
    for line in config_lines(config, show_secrets=args.show_secrets):
        print(line)
    return 0
