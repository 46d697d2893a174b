#!/usr/bin/env bash
# The front door on the embedded defaults: install SEMC (no system service needed), then `semc demo`:
# a live simulated session (20 CI-size exposures, one every 4 s, with gain, defects and varied defocus)
# processed by the daemon while it arrives (motion correction + CTF on a local Dask cluster, SQLite),
# with a progress line and a summary against the simulation's ground truth; then how to open the
# dashboard and the admin on the demo data.
#
# DEMO_HOME (default ~/.local/share/semc-demo) is the SEMC home the demo uses and keeps; DEMO_ARGS adds
# `semc demo` options, e.g. DEMO_ARGS="--exposures 6 --interval 2". Extra arguments go to `semc demo` too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -m pip install -q --disable-pip-version-check -e .
HOME_DIR=${DEMO_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/semc-demo}
# shellcheck disable=SC2086  # DEMO_ARGS is a list of options
exec "$PY" -m semc demo --home "$HOME_DIR" ${DEMO_ARGS:-} "$@"
