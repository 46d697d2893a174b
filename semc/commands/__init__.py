"""Subcommands of the ``semc`` command, one module each (``add_arguments`` + ``run``)."""
