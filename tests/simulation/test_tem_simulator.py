"""The external TEM-Simulator path, run with a stand-in program that follows the template contract."""

from __future__ import annotations

import json
import math
import stat
import sys

import mrcfile
import numpy as np
import pytest

from semc.simulation.physics.models import random_rotations
from semc.simulation.tiltseries import BasicAssembler, series_simulate, tiltseries_config_from_dict
from semc.simulation.tiltseries.tem_simulator import zxz_degree_from_matrix

TEMPLATE = """=== simulation ===
log_file = ${log_file}
=== particle p ===
map_file_re_in = ${map_file}
coord_file_in = ${coord_file}
=== geometry ===
tilt_file = ${tilt_file}
ntilts = ${ntilts}
=== optics ===
defocus_nominal = ${defocus_um}
=== detector ===
det_pix_x = ${nx}
det_pix_y = ${ny}
image_file_out = ${image_file_out}
image_file_nonoise_out = ${image_file_nonoise_out}
"""

FAKE = """#!{python}
import sys, numpy as np, mrcfile
kv = dict(l.split(' = ') for l in open(sys.argv[1]).read().splitlines() if ' = ' in l)
angles = [float(a) for a in open(kv['tilt_file']).read().split()]
ny, nx = int(kv['det_pix_y']), int(kv['det_pix_x'])
n_particles = int(open(kv['coord_file_in']).readline().split()[0])
for key, extra in (('image_file_out', 1000.0), ('image_file_nonoise_out', 0.0)):
    data = np.stack([np.full((ny, nx), a + extra + n_particles, np.float32) for a in angles])
    with mrcfile.new(kv[key], overwrite=True) as m:
        m.set_data(data)
"""


def test_tem_simulator_outputs_are_sorted_by_angle_with_truth(tmp_path):
    fake = tmp_path / "TEM-simulator"
    fake.write_text(FAKE.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "sim.txt").write_text(TEMPLATE)
    config = tiltseries_config_from_dict({
        "root": "out", "shape": [32, 48], "tilt_step_degree": 30, "scheme": "dose-symmetric", "group_size": 1,
        "assembler_options": {"n_particles": 3, "models": ["small"], "margin_angstrom": 5},
        "tem_simulator": {"executable": str(fake), "template": "sim.txt", "timeout_s": 60}}, base_dir=tmp_path)
    assembler = BasicAssembler(options=config.assembler_options, temp_dir=tmp_path / "tmp")
    record = series_simulate(config, 0, assembler)
    assembler.close()
    out = tmp_path / "out" / "ts_0"
    with mrcfile.open(out / "ts_0.mrc") as m:
        assert m.data[:, 0, 0].tolist() == [a + 1003.0 for a in (-60, -30, 0, 30, 60)]
        assert float(m.voxel_size.x) == pytest.approx(2.0)
    with mrcfile.open(out / "ts_0_nonoise.mrc") as m:
        assert m.data.shape == (5, 32, 48)
    assert record["tilt_angles_acquisition_order"] == [0, 30, -30, 60, -60]
    assert json.loads((out / "ts_0.truth.json").read_text())["renderer"] == "TEM-Simulator"
    assert not (tmp_path / "tmp").exists()


def test_zxz_angles_rebuild_the_rotation():
    def rz(a):
        c, s = math.cos(a), math.sin(a)
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])

    def rx(a):
        c, s = math.cos(a), math.sin(a)
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])

    for rot in random_rotations(np.random.default_rng(2), 20):
        phi, theta, psi = np.radians(zxz_degree_from_matrix(rot))
        assert np.allclose(rz(phi) @ rx(theta) @ rz(psi), rot, atol=1e-9)
