"""``python -m semc`` runs the ``semc`` command."""

import sys

from semc.cli import main

sys.exit(main())
