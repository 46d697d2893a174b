#!/usr/bin/env bash
# The main job on the embedded defaults: install, simulate a small Leginon session (files and
# database rows, with ground truth), process it with the daemon (motion correction + CTF on a
# local Dask cluster), and say where the results are. SEMC_HOME selects the data directory.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -m pip install -q --disable-pip-version-check -e .   # the demo needs no system service
NAME=${DEMO_SESSION:-demo$(date +%y%m%d%H%M%S)}
N=${DEMO_EXPOSURES:-6}
HOME_DIR=$("$PY" -c 'from semc.config import config_load; print(config_load().home)')
semc init >/dev/null
semc simulate session --name "$NAME" --exposures "$N" --seed 1
semc loop --session "$NAME" --preset enn --rundir "$HOME_DIR/runs/$NAME/run1" --no-wait --patches 3,3
echo
echo "Results: classic rows in $HOME_DIR (SQLite), files in $HOME_DIR/runs/$NAME/run1"
echo "  (RELION view: corrected_micrographs.star, micrographs_ctf.star; ground truth: *.truth.json in"
echo "   $HOME_DIR/sessions/frames/$NAME/rawdata)"
echo "Inspect them: python manage.py createsuperuser && python manage.py runserver, then /admin/"
