"""A stand-in for Gctf 1.06 (test helper): Gctf's command line in, Gctf's output files out.

No Gctf can be installed here (closed source, CUDA). This program accepts the options SEMC's
Gctf command builder uses, estimates the CTF with SEMC's built-in engine (so its numbers are
real fits, equal to the built-in engine's for the same search) and writes what Gctf writes next
to the input (``<root>.ctf``, ``<root>_gctf.log``, ``<root>_EPA.log``) and in its working
directory (``micrographs_all_gctf.star``), in Gctf's conventions: Defocus_U/V/Angle are RELION's
(CTFFIND's defocus 1, defocus 2 and azimuth). ``--help`` prints the banner specimen beside it.

``FAKE_GCTF_MODE`` makes it misbehave: ``crash`` (a CUDA error, exit 1), ``star-empty`` (a star
file with labels but no values), ``hang`` (sleeps).
"""

import math
import os
import sys
import time
from pathlib import Path

BANNER = Path(__file__).with_name("1.06") / "gctf_help.txt"
STAR_LABELS = ("MicrographName", "CtfImage", "DefocusU", "DefocusV", "DefocusAngle", "Voltage",
               "SphericalAberration", "AmplitudeContrast", "Magnification", "DetectorPixelSize",
               "CtfFigureOfMerit", "FinalResolution")


def options(argv):
    values, i = {}, 0
    while i < len(argv) - 1:
        if not argv[i].startswith("--"):
            sys.exit(f"Gctf: unexpected argument {argv[i]}")
        values[argv[i][2:]] = argv[i + 1]
        i += 2
    return values, argv[-1]


def main():
    argv = sys.argv[1:]
    banner = BANNER.read_text()
    if not argv or argv[0] in ("--help", "-h"):
        print(banner)
        return 0
    mode = os.environ.get("FAKE_GCTF_MODE", "ok")
    print(banner)
    if mode == "crash":
        print("CUDA error: no CUDA-capable device is detected", file=sys.stderr)
        return 1
    if mode == "hang":
        time.sleep(600)
    opts, image = options(argv)
    from semc.base.io import write_mrc
    from semc.ctfestimation.api import estimate_ctf
    from semc.ctfestimation.types import CtfSearchParameters

    params = CtfSearchParameters(
        pixel_size_angstrom=float(opts["apix"]), voltage_kv=float(opts["kv"]), spherical_aberration_mm=float(opts["cs"]),
        amplitude_contrast=float(opts["ac"]), box_size=int(opts["boxsize"]),
        min_resolution_angstrom=float(opts["resL"]), max_resolution_angstrom=float(opts["resH"]),
        min_defocus_angstrom=float(opts["defL"]), max_defocus_angstrom=float(opts["defH"]),
        defocus_step_angstrom=float(opts["defS"]), astigmatism_restraint_angstrom=float(opts["astm"]))
    r = estimate_ctf(image, params=params)
    root = image.removesuffix(".mrc")
    write_mrc(f"{root}.ctf", r.diagnostics.diagnostic_image, pixel_size_angstrom=None)
    with open(f"{root}_gctf.log", "w") as fh:
        fh.write(banner + "\n")
        fh.write("*" * 38 + "   LAST CYCLE    " + "*" * 60 + " *\n\n")
        fh.write("   Defocus_U   Defocus_V       Angle         CCC\n")
        fh.write(f"{r.defocus_1_angstrom:12.2f}{r.defocus_2_angstrom:12.2f}{r.astigmatism_azimuth_degree:12.2f}"
                 f"{r.cross_correlation:12.6f}  Final Values\n\n")
        fh.write(f"Resolution limit estimated by EPA: RES_LIMIT {r.fit_resolution_angstrom:.3f}\n")
        fh.write("Estimated Bfactor: B_AFTER    62.13\n")
    d = r.diagnostics
    with open(f"{root}_EPA.log", "w") as fh:
        fh.write("  Resolution     |CTFsim|  EPA( Ln|F| )  EPA(Ln|F| - Bg)  CCC\n")
        fh.writelines(f"{1.0 / d.spatial_frequency_per_angstrom[k]:12.6f} {d.ctf_fit[k]:12.6f} "
                      f"{d.rotational_average[k]:12.6f} {d.rotational_average[k]:12.6f} "
                      f"{d.fit_correlation[k]:12.6f}\n" for k in range(1, d.spatial_frequency_per_angstrom.size))
    values = [image, f"{root}.ctf:mrc", f"{r.defocus_1_angstrom:.6f}", f"{r.defocus_2_angstrom:.6f}",
              f"{r.astigmatism_azimuth_degree:.6f}", opts["kv"], opts["cs"], opts["ac"], "10000.0", opts["apix"],
              f"{r.cross_correlation:.6f}", f"{r.fit_resolution_angstrom:.6f}"]
    with open("micrographs_all_gctf.star", "w") as fh:
        fh.write("\ndata_\n\nloop_\n" + "".join(f"_rln{label} #{i + 1}\n" for i, label in enumerate(STAR_LABELS)))
        if mode != "star-empty":
            fh.write(" ".join(values) + "\n")
        fh.write("\n")
    print(f"\n   Defocus_U   Defocus_V       Angle         CCC\n{r.defocus_1_angstrom:12.2f}"
          f"{r.defocus_2_angstrom:12.2f}{r.astigmatism_azimuth_degree:12.2f}{r.cross_correlation:12.6f}  Final Values")
    print("Processing done successfully." if math.isfinite(r.defocus_1_angstrom) else "failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
