"""Where the real-data oracles are: ``$SEMC_REALDATA``, else ``shared/realdata`` beside the checkout."""

import os
from pathlib import Path

REALDATA = Path(os.environ.get("SEMC_REALDATA") or Path(__file__).resolve().parents[1].parent / "shared" / "realdata")
