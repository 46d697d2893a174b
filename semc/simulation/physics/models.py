"""Particle density models: sums of isotropic 3D Gaussian blobs.

A model is a set of blobs, each with a centre (Å, relative to the model's
centre), an integrated potential weight (V·Å³) and a width σ (Å). Blobs make
projection exact at any orientation: a rotated Gaussian projects to a 2D
Gaussian of the same σ and weight.

Two sources: a procedural library (:func:`model_library`) and atoms read from
PDB or mmCIF text with simple scattering factors (:func:`model_from_pdb_text`,
:func:`model_from_mmcif_text`). Atomic weights are ∫V d³r = (h² / 2π m₀ e) f_e(0)
= 47.878 V·Å² × f_e(0), with f_e(0) the sum of the five Peng et al. (1996,
Acta Cryst. A52:257) elastic coefficients a_i; the atom is one Gaussian of
σ = 0.5 Å widened by its B-factor (σ² += B / 8π²).
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from semc.base.errors import CorruptInput, InvalidParameters

__all__ = ["DensityModel", "model_library", "model_from_pdb_text", "model_from_mmcif_text", "random_rotations"]

#: h² / (2π m₀ e) in V·Å²: converts f_e(0) (Å) into ∫V d³r (V·Å³)
_POTENTIAL_PER_FE = 47.878
#: f_e(0) in Å, sums of Peng et al. (1996) a_i (elastic, neutral atoms)
_FE0_ANGSTROM = {"H": 0.529, "C": 2.509, "N": 2.213, "O": 1.983, "P": 5.486, "S": 5.160,
                 "MG": 5.21, "NA": 4.72, "CA": 8.21, "FE": 7.1, "ZN": 6.5, "CL": 4.96, "K": 8.9}
_ATOM_SIGMA_ANGSTROM = 0.5
#: protein partial specific volume ≈ 1.23 Å³ per Da
_A3_PER_DA = 1.23


@dataclass(frozen=True, slots=True)
class DensityModel:
    """A particle as Gaussian blobs: ``centres_angstrom`` (n, 3) xyz, ``weights_v_a3`` (n,), ``sigmas_angstrom`` (n,)."""

    name: str
    centres_angstrom: NDArray[np.float64]
    weights_v_a3: NDArray[np.float64]
    sigmas_angstrom: NDArray[np.float64]

    def __post_init__(self) -> None:
        c = np.asarray(self.centres_angstrom, dtype=np.float64).reshape(-1, 3)
        w = np.asarray(self.weights_v_a3, dtype=np.float64).ravel()
        s = np.asarray(self.sigmas_angstrom, dtype=np.float64).ravel()
        if not (len(c) == len(w) == len(s)) or len(c) == 0:
            raise InvalidParameters(f"model {self.name!r}: centres, weights and sigmas must match and be non-empty")
        if np.any(s <= 0):
            raise InvalidParameters(f"model {self.name!r}: blob widths must be positive")
        object.__setattr__(self, "centres_angstrom", c - c.mean(axis=0))
        object.__setattr__(self, "weights_v_a3", w)
        object.__setattr__(self, "sigmas_angstrom", s)

    @property
    def radius_angstrom(self) -> float:
        """Radius of the sphere that holds every blob centre plus 2σ."""
        return float(np.max(np.linalg.norm(self.centres_angstrom, axis=1) + 2 * self.sigmas_angstrom))


def _globular(rng, mass_kda: float, contrast_v: float, name: str) -> DensityModel:
    n = max(4, int(mass_kda / 5))
    volume = mass_kda * 1e3 * _A3_PER_DA
    radius = (3 * volume / (4 * math.pi)) ** (1 / 3)
    pts = rng.normal(size=(n, 3))
    pts *= (radius * 0.7 * rng.uniform(0.3, 1.0, size=n) ** (1 / 3) / np.linalg.norm(pts, axis=1))[:, None]
    pts *= np.array([1.0, 0.8, 0.65])  # not spherical, so orientation matters
    sigma = np.full(n, radius / n ** (1 / 3) * 0.8)
    return DensityModel(name, pts, np.full(n, contrast_v * volume / n), sigma)


def _shell(n: int, radius: float, sigma: float, total_volume: float, contrast_v: float, name: str) -> DensityModel:
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = math.pi * (1 + 5**0.5) * i
    pts = radius * np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], axis=1)
    return DensityModel(name, pts, np.full(n, contrast_v * total_volume / n), np.full(n, sigma))


def model_library(contrast_v: float = 2.4) -> dict[str, DensityModel]:
    """The built-in procedural models (deterministic; the same on every call).

    - ``globular``: a 300 kDa elongated blob cluster;
    - ``small``: a 100 kDa cluster;
    - ``apoferritin``: a 480 kDa hollow shell (outer radius ≈ 60 Å, 24 subunits);
    - ``ribosome``: two clusters of 1.5 and 0.8 MDa side by side;
    - ``point``: one blob of σ 2 Å (geometry tests).
    """
    rng = np.random.default_rng(20260101)
    lib = {
        "globular": _globular(rng, 300.0, contrast_v, "globular"),
        "small": _globular(rng, 100.0, contrast_v, "small"),
        "apoferritin": _shell(24, 50.0, 9.0, 480e3 * _A3_PER_DA, contrast_v, "apoferritin"),
    }
    big = _globular(rng, 1500.0, contrast_v, "large")
    sm = _globular(rng, 800.0, contrast_v, "small-subunit")
    lib["ribosome"] = DensityModel(
        "ribosome",
        np.concatenate([big.centres_angstrom, sm.centres_angstrom + np.array([0.0, 0.0, 95.0])]),
        np.concatenate([big.weights_v_a3, sm.weights_v_a3]),
        np.concatenate([big.sigmas_angstrom, sm.sigmas_angstrom]),
    )
    lib["point"] = DensityModel("point", np.zeros((1, 3)), np.array([contrast_v * 4000.0]), np.array([2.0]))
    return lib


def _atoms_to_model(name: str, xyz, elements, bfactors) -> DensityModel:
    if len(xyz) == 0:
        raise CorruptInput(f"no atoms in model {name!r}", step="simulation")
    fe = np.array([_FE0_ANGSTROM.get(e.upper(), 2.5) for e in elements])
    sig = np.sqrt(_ATOM_SIGMA_ANGSTROM**2 + np.asarray(bfactors, dtype=float) / (8 * math.pi**2))
    return DensityModel(name, np.asarray(xyz, dtype=float), fe * _POTENTIAL_PER_FE, sig)


def model_from_pdb_text(text: str, *, name: str = "pdb") -> DensityModel:
    """Atoms (ATOM/HETATM records, first model only) from PDB text; water is skipped."""
    xyz, el, bf = [], [], []
    for line in text.splitlines():
        if line.startswith("ENDMDL"):
            break
        if not line.startswith(("ATOM  ", "HETATM")) or line[17:20] == "HOH":
            continue
        try:
            xyz.append((float(line[30:38]), float(line[38:46]), float(line[46:54])))
            b = line[60:66].strip()
            bf.append(float(b) if b else 20.0)
        except ValueError as exc:
            raise CorruptInput(f"bad PDB coordinate line: {line!r}", step="simulation") from exc
        element = line[76:78].strip() or line[12:16].strip().lstrip("0123456789")[:1]
        el.append(element)
    return _atoms_to_model(name, xyz, el, bf)


def model_from_mmcif_text(text: str, *, name: str = "mmcif") -> DensityModel:
    """Atoms from the ``_atom_site`` loop of mmCIF text (first model only; water skipped)."""
    lines = text.splitlines()
    cols: list[str] = []
    xyz, el, bf = [], [], []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "loop_" and i + 1 < len(lines) and lines[i + 1].startswith("_atom_site."):
            i += 1
            while i < len(lines) and lines[i].startswith("_atom_site."):
                cols.append(lines[i].split()[0][len("_atom_site."):])
                i += 1
            break
        i += 1
    if not cols:
        raise CorruptInput("no _atom_site loop in mmCIF text", step="simulation")
    ix = {c: k for k, c in enumerate(cols)}
    first_model = None
    for line in lines[i:]:
        if not line.strip() or line.startswith(("#", "loop_", "_")):
            break
        f = shlex.split(line)
        if f[ix.get("label_comp_id", 0)] == "HOH":
            continue
        model_no = f[ix["pdbx_PDB_model_num"]] if "pdbx_PDB_model_num" in ix else "1"
        first_model = first_model or model_no
        if model_no != first_model:
            break
        xyz.append((float(f[ix["Cartn_x"]]), float(f[ix["Cartn_y"]]), float(f[ix["Cartn_z"]])))
        el.append(f[ix["type_symbol"]] if "type_symbol" in ix else "C")
        bf.append(float(f[ix["B_iso_or_equiv"]]) if "B_iso_or_equiv" in ix else 20.0)
    return _atoms_to_model(name, xyz, el, bf)


def random_rotations(rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    """``n`` rotation matrices (n, 3, 3) uniform on SO(3) (normalised Gaussian quaternions)."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], axis=-1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], axis=-1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], axis=-1),
    ], axis=1)
