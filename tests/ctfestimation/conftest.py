"""Fixtures of the CTF tests: a small synthetic micrograph with a known CTF on disk."""

import pytest

from semc.base.io import write_mrc
from tests.ctfestimation.synthetic import synthetic_micrograph

#: the known CTF of ``micrograph_path`` (Å, Å, degrees) and its optics
TRUTH = {"defocus_1": 15400.0, "defocus_2": 14600.0, "azimuth": 33.0, "pixel": 1.0, "kv": 300.0, "cs": 2.7, "ac": 0.07}


@pytest.fixture(scope="session")
def micrograph_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("ctf") / "micrograph.mrc"
    image = synthetic_micrograph(shape=(1024, 1024), pixel_size_angstrom=TRUTH["pixel"], voltage_kv=TRUTH["kv"], cs_mm=TRUTH["cs"],
                                 amplitude_contrast=TRUTH["ac"], defocus_1_angstrom=TRUTH["defocus_1"],
                                 defocus_2_angstrom=TRUTH["defocus_2"], azimuth_degree=TRUTH["azimuth"], seed=11)
    write_mrc(path, image, pixel_size_angstrom=TRUTH["pixel"])
    return path


def relion_micrographs_star(path, *, micrograph="mic1.mrc") -> None:
    """A RELION 3.1 micrographs STAR file for one micrograph with the optics of ``TRUTH``."""
    path.write_text(
        "# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroupName #1\n_rlnOpticsGroup #2\n_rlnMicrographPixelSize #3\n"
        "_rlnVoltage #4\n_rlnSphericalAberration #5\n_rlnAmplitudeContrast #6\nopticsGroup1 1 1.0 300 2.7 0.07\n\n"
        f"# version 30001\n\ndata_micrographs\n\nloop_\n_rlnMicrographName #1\n_rlnOpticsGroup #2\n{micrograph} 1\n"
    )
