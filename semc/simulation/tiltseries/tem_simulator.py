"""Render a tilt series through an external TEM-Simulator executable, from a configuration template.

Used instead of the built-in projector when ``tem_simulator.executable`` is
set. The template (``tem_simulator.template``) is a TEM-Simulator input file
with ``string.Template`` placeholders, filled per series:

``${image_file_out}``, ``${image_file_nonoise_out}`` (MRC stacks the program
must write, in acquisition order), ``${log_file}``, ``${coord_file}`` (particle
list), ``${map_file}`` (the particle's potential map, MRC, V; one model per
series), ``${tilt_file}`` (one angle per line, acquisition order), ``${ntilts}``,
``${theta_start}``, ``${theta_incr}`` (continuous scheme), ``${defocus_um}``,
``${dose_per_im}`` (e/Å² per tilt; TEM-Simulator wants e/nm², see the
template), ``${voltage_kv}``, ``${nx}``, ``${ny}``, ``${pixel_size_nm}``.

The coordinate file has a first line ``<n> 6`` and one line per particle,
``x y z phi theta psi``: position in nm from the field centre, and ZXZ Euler
angles in degrees with R = Rz(phi) · Rx(theta) · Rz(psi) of the particle's
rotation. Whether that is the rotation sense TEM-Simulator applies must be
checked against its manual for the version in use; no TEM-Simulator binary
was available when this was written, and the path is tested with a stand-in
program that follows this contract.
"""

from __future__ import annotations

import logging
import math
import string
from pathlib import Path

import mrcfile
import numpy as np

from semc.base.errors import ConfigurationError, CorruptInput
from semc.base.external import run
from semc.simulation.tiltseries.schemes import tilt_angles
from semc.simulation.truth import json_write
from semc.simulation.writers import mrc_write_reproducible

logger = logging.getLogger(__name__)

__all__ = ["tem_simulator_render", "zxz_degree_from_matrix", "model_map"]


def zxz_degree_from_matrix(rot: np.ndarray) -> tuple[float, float, float]:
    """(phi, theta, psi) in degrees with R = Rz(phi) · Rx(theta) · Rz(psi)."""
    theta = math.acos(max(-1.0, min(1.0, rot[2, 2])))
    if abs(math.sin(theta)) < 1e-8:
        return math.degrees(math.atan2(rot[1, 0], rot[0, 0])), math.degrees(theta), 0.0
    return (math.degrees(math.atan2(rot[0, 2], -rot[1, 2])), math.degrees(theta),
            math.degrees(math.atan2(rot[2, 0], rot[2, 1])))


def model_map(model, pixel_size_angstrom: float) -> np.ndarray:
    """The potential (V) of a blob model on a cubic grid (z, y, x) of the given voxel size."""
    half = int(math.ceil(model.radius_angstrom / pixel_size_angstrom)) + 2
    ax = (np.arange(-half, half + 1) * pixel_size_angstrom)
    z, y, x = np.meshgrid(ax, ax, ax, indexing="ij")
    vol = np.zeros(z.shape)
    for (cx, cy, cz), w, s in zip(model.centres_angstrom, model.weights_v_a3, model.sigmas_angstrom):
        r2 = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2
        vol += w / (2 * math.pi * s * s) ** 1.5 * np.exp(-r2 / (2 * s * s))
    return vol.astype(np.float32)


def _read_stack(path: Path, n: int) -> np.ndarray:
    try:
        with mrcfile.open(path, permissive=True) as m:
            data = np.asarray(m.data, dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise CorruptInput(f"TEM-Simulator output unreadable: {exc}", step="simulation", path=str(path)) from exc
    if data.ndim != 3 or data.shape[0] != n:
        raise CorruptInput(f"TEM-Simulator wrote shape {data.shape}, expected {n} tilts", step="simulation",
                           path=str(path))
    return data


def tem_simulator_render(sim, out_dir: Path, *, temp_dir: Path) -> dict:
    """Fill the template, run the program in ``temp_dir``, write the standard outputs to ``out_dir``."""
    c = sim.config
    tem = c.tem_simulator
    out_dir.mkdir(parents=True, exist_ok=True)
    if not tem.get("template"):
        raise ConfigurationError("tem_simulator.executable needs tem_simulator.template", key="tem_simulator")
    models = {m for m, _, _ in sim.particles}
    if len(models) > 1:
        raise ConfigurationError("the TEM-Simulator path takes one particle model per series", key="assembler")
    angles = tilt_angles(c.scheme, tilt_min_degree=c.tilt_min_degree, tilt_max_degree=c.tilt_max_degree,
                         step_degree=c.tilt_step_degree, group_size=c.group_size, start_degree=c.start_degree)
    coord, tilt_file, map_file = temp_dir / "coords.txt", temp_dir / "tilts.txt", temp_dir / "particle.mrc"
    lines = [f"{len(sim.particles)} 6"]
    for _, centre, rot in sim.particles:
        x, y, z = centre / 10.0
        lines.append(f"{x:.4f} {y:.4f} {z:.4f} " + " ".join(f"{a:.4f}" for a in zxz_degree_from_matrix(rot)))
    coord.write_text("\n".join(lines) + "\n")
    tilt_file.write_text("".join(f"{a:.3f}\n" for a in angles))
    if models:
        mrc_write_reproducible(map_file, model_map(sim.models[models.pop()], c.pixel_size_angstrom),
                               pixel_size_angstrom=c.pixel_size_angstrom, label="semc.simulation particle map")
    optics = c.optics_spec(sim.index)
    values = {
        "image_file_out": str(temp_dir / "tilts.mrc"), "image_file_nonoise_out": str(temp_dir / "tilts_nonoise.mrc"),
        "log_file": str(temp_dir / "tem_simulator.log"), "coord_file": str(coord), "map_file": str(map_file),
        "tilt_file": str(tilt_file), "ntilts": len(angles), "theta_start": angles[0],
        "theta_incr": c.tilt_step_degree, "defocus_um": 0.5 * (optics.defocus1_angstrom + optics.defocus2_angstrom) / 1e4,
        "dose_per_im": c.dose_per_tilt_e_per_a2, "voltage_kv": optics.voltage_kv, "nx": c.shape[1], "ny": c.shape[0],
        "pixel_size_nm": c.pixel_size_angstrom / 10.0,
    }
    try:
        text = string.Template(Path(tem["template"]).read_text()).substitute(values)
    except (KeyError, ValueError, OSError) as exc:
        raise ConfigurationError(f"bad TEM-Simulator template: {exc}", key="tem_simulator.template") from exc
    (temp_dir / "sim.txt").write_text(text)
    run([tem["executable"], str(temp_dir / "sim.txt")], cwd=temp_dir, timeout_s=float(tem.get("timeout_s", 3600)),
        log_path=out_dir / f"{sim.name}.tem_simulator.out", step="simulation", program="TEM-Simulator")
    order = sorted(range(len(angles)), key=lambda k: angles[k])
    for src, dst in (("tilts.mrc", f"{sim.name}.mrc"), ("tilts_nonoise.mrc", f"{sim.name}_nonoise.mrc")):
        stack = _read_stack(temp_dir / src, len(angles))[order]
        mrc_write_reproducible(out_dir / dst, stack, pixel_size_angstrom=c.pixel_size_angstrom,
                               label=f"semc.simulation {sim.name} via TEM-Simulator")
    ny, nx = c.shape
    record = {"format": "semc-simulation-tiltseries-truth/1", "name": sim.name, "renderer": "TEM-Simulator",
              "stack": f"{sim.name}.mrc", "noise_free_stack": f"{sim.name}_nonoise.mrc",
              "tilt_angles_acquisition_order": angles, "pixel_size_angstrom": c.pixel_size_angstrom,
              "particles": [{"model": m, "centre_angstrom_xyz": ctr.tolist(), "rotation_matrix": r.tolist(),
                             "euler_zxz_degree": list(zxz_degree_from_matrix(r))} for m, ctr, r in sim.particles],
              "shape_yx": [ny, nx]}
    (out_dir / f"{sim.name}.rawtlt").write_text("".join(f"{angles[k]:.2f}\n" for k in order))
    json_write(out_dir / f"{sim.name}.truth.json", record)
    return record
