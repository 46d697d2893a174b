"""The RELION view: accumulated motion as RELION defines it; STAR files RELION's own tables can read back."""

from __future__ import annotations

import pytest
import starfile

from semc.base.relion_star import (
    Optics,
    accumulated_motion_angstrom,
    corrected_micrographs_table,
    micrographs_ctf_table,
    star_write,
)


def test_accumulated_motion_splits_early_and_late_at_the_dose_cutoff():
    positions = [(0.0, 0.0), (3.0, 4.0), (3.0, 5.0), (3.0, 7.0)]  # steps 5, 1, 2 px
    total, early, late = accumulated_motion_angstrom(positions, pixel_size_angstrom=0.5, dose_per_frame=2.0)
    assert total == pytest.approx(4.0)
    assert early == pytest.approx(3.0)  # frames with accumulated dose 2 and 4 e/Å² are early
    assert late == pytest.approx(1.0)


def test_star_files_read_back_with_relion_labels(tmp_path):
    optics = Optics(pixel_size_angstrom=0.885, original_pixel_size_angstrom=0.885, voltage_kv=200, cs_mm=1.4,
                    amplitude_contrast=0.1)
    star_write(tmp_path / "corrected_micrographs.star", optics, corrected_micrographs_table(
        [{"micrograph": "/d/a.mrc", "total": 14.5, "early": 2.4, "late": 12.1}]))
    star_write(tmp_path / "micrographs_ctf.star", optics, micrographs_ctf_table(
        [{"micrograph": "/d/a.mrc", "ctf_image": "/d/a-pow.mrc", "defocus_u": 10865.0, "defocus_v": 10571.5,
          "angle": 79.13, "figure_of_merit": 0.132, "max_resolution": 4.84}]))
    motion = starfile.read(tmp_path / "corrected_micrographs.star")
    ctf = starfile.read(tmp_path / "micrographs_ctf.star")
    assert motion["optics"]["rlnVoltage"][0] == 200
    assert motion["micrographs"]["rlnAccumMotionTotal"][0] == pytest.approx(14.5)
    assert ctf["micrographs"]["rlnCtfAstigmatism"][0] == pytest.approx(293.5)
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.relion
@pytest.mark.skipif(not __import__("shutil").which("relion_star_printtable"), reason="RELION 3.1 not installed")
def test_relion_itself_reads_the_ctf_view(tmp_path):
    import subprocess

    optics = Optics(pixel_size_angstrom=1.0, original_pixel_size_angstrom=1.0, voltage_kv=300, cs_mm=2.7,
                    amplitude_contrast=0.07)
    star_write(tmp_path / "micrographs_ctf.star", optics, micrographs_ctf_table(
        [{"micrograph": f"/d/m{i}.mrc", "ctf_image": f"/d/m{i}-pow.mrc", "defocus_u": 15000.0 + i,
          "defocus_v": 14000.0, "angle": 30.0, "figure_of_merit": 0.1, "max_resolution": 4.0} for i in range(3)]))
    out = subprocess.run(["relion_star_printtable", str(tmp_path / "micrographs_ctf.star"), "data_micrographs",
                          "rlnMicrographName", "rlnDefocusU"], capture_output=True, text=True, check=True).stdout
    assert [line.split() for line in out.splitlines()] == [[f"/d/m{i}.mrc", f"{15000 + i:.6f}"] for i in range(3)]
