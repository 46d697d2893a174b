"""pytest plugin, loaded before Django's settings: isolate the test run from a user's SEMC data.

Every test run gets its own ``SEMC_HOME`` (a fresh temporary folder unless
``SEMC_TEST_HOME`` names one), runs in standalone mode, ignores any
``semc.toml`` and ``sinedon.cfg`` of the user, and uses a throw-away secret key.
The database backend stays selectable (``SEMC_DB_BACKEND=mysql`` with
``SEMC_DB_HOST``/``PORT``/``USER``/``PASSWORD`` runs the same tests on MariaDB).
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile

_home = os.environ.get("SEMC_TEST_HOME")
if not _home:
    _home = tempfile.mkdtemp(prefix="semc-test-home-")
    atexit.register(shutil.rmtree, _home, ignore_errors=True)
os.environ["SEMC_HOME"] = _home
os.environ["SEMC_MODE"] = "standalone"
os.environ["SEMC_SECRET_KEY"] = secrets.token_urlsafe(32)
os.environ["SEMC_CONFIG"] = ""
os.environ.pop("SINEDON_CFG_PATH", None)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "semc.settings")
