"""Density models: atoms from PDB and mmCIF text, the library, random rotations, blob projection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from semc.simulation.physics.models import (
    model_from_mmcif_text,
    model_from_pdb_text,
    model_library,
    random_rotations,
)
from semc.simulation.physics.specimen import project_blobs

PDB = """\
ATOM      1  N   ALA A   1      11.104   6.134  -6.504  1.00 20.00           N
ATOM      2  CA  ALA A   1      11.639   6.071  -5.147  1.00 20.00           C
ATOM      3  O   ALA A   1      12.000   7.000  -4.000  1.00 40.00           O
HETATM    4  O   HOH A 101       0.000   0.000   0.000  1.00 20.00           O
ENDMDL
ATOM      5  S   MET A   2      99.000  99.000  99.000  1.00 20.00           S
"""

CIF = """\
data_test
loop_
_atom_site.group_PDB
_atom_site.id
_atom_site.type_symbol
_atom_site.label_atom_id
_atom_site.label_comp_id
_atom_site.Cartn_x
_atom_site.Cartn_y
_atom_site.Cartn_z
_atom_site.B_iso_or_equiv
_atom_site.pdbx_PDB_model_num
ATOM 1 N N ALA 11.104 6.134 -6.504 20.0 1
ATOM 2 C CA ALA 11.639 6.071 -5.147 20.0 1
ATOM 3 O O ALA 12.000 7.000 -4.000 40.0 1
HETATM 4 O O HOH 0.0 0.0 0.0 20.0 1
ATOM 5 S SD MET 99.0 99.0 99.0 20.0 2
"""


def test_pdb_and_mmcif_give_the_same_atoms_without_water_or_later_models():
    a, b = model_from_pdb_text(PDB), model_from_mmcif_text(CIF)
    assert len(a.weights_v_a3) == len(b.weights_v_a3) == 3
    assert np.allclose(a.centres_angstrom, b.centres_angstrom)
    assert np.allclose(a.weights_v_a3, b.weights_v_a3)
    assert np.allclose(a.sigmas_angstrom, b.sigmas_angstrom)


def test_atom_weights_follow_the_element_and_widths_the_b_factor():
    m = model_from_pdb_text(PDB)
    n, c, o = m.weights_v_a3
    assert c > n > o  # f_e(0): C 2.51 > N 2.21 > O 1.98 Å
    assert m.sigmas_angstrom[2] ** 2 - m.sigmas_angstrom[1] ** 2 == pytest.approx(20.0 / (8 * math.pi**2))


def test_random_rotations_are_proper_rotations_spread_over_so3():
    r = random_rotations(np.random.default_rng(0), 2000)
    assert np.allclose(np.einsum("nij,nkj->nik", r, r), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(r), 1.0)
    # uniform on SO(3): the rotated z axis is uniform on the sphere, so its z component has mean 0, var 1/3
    z = r[:, :, 2][:, 2]
    assert abs(z.mean()) < 0.05 and z.var() == pytest.approx(1 / 3, abs=0.03)


def test_projected_blob_integrates_to_its_weight():
    img = project_blobs(np.array([[31.3, 40.7]]), np.array([1000.0]), np.array([3.0]), shape=(64, 96),
                        pixel_size_angstrom=1.5)
    assert img.sum() * 1.5**2 == pytest.approx(1000.0, rel=5e-4)  # window of ±4σ
    cy, cx = np.unravel_index(np.argmax(img), img.shape)
    assert (cx, cy) == (31, 41)


def test_library_models_are_deterministic():
    a, b = model_library(), model_library()
    assert set(a) >= {"globular", "apoferritin", "ribosome", "point", "small"}
    assert np.array_equal(a["globular"].centres_angstrom, b["globular"].centres_angstrom)
