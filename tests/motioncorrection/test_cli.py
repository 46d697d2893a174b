"""semc-motioncor2 end to end on a small TIFF movie, and RELION 3.1's reading of its output."""

import re
import subprocess

import mrcfile
import numpy as np
import pytest
import scipy.ndimage
import tifffile

from semc.motioncorrection.calc.external_log import motioncor_log_parse, motioncor_version_parse
from semc.motioncorrection.cli import VERSION_LINE, motioncor2_main

from .conftest import make_movie


@pytest.fixture(scope="module")
def tiff_movie(tmp_path_factory):
    d = tmp_path_factory.mktemp("mc")
    m = make_movie(shape=(512, 512), n_frames=16, dose_per_pixel=1.0, seed=11)
    path = d / "mov.tif"
    tifffile.imwrite(path, m.frames.astype(np.uint8), compression="lzw")
    return path, m


def _relion_31_global_shifts(text):
    """RELION 3.1.3 getShiftsMotioncor2, re-stated: rows after 'Full-frame alignment shift'."""
    out, found = [], False
    for line in text.splitlines():
        if "Full-frame alignment shift" in line:
            found = True
        elif found:
            if "shift:" not in line:
                break
            out.append([float(w) for w in line[line.find("shift:") + 7 :].split()[:2]])
    return np.array(out)


def _logged_shifts(text):
    """The shift table of a log (x, y per frame), read by SEMC's parser of real MotionCor2 1.6.4 logs."""
    return np.array(motioncor_log_parse(text, version=motioncor_version_parse(VERSION_LINE)).shifts_px)


def test_cli_writes_sums_and_logs_and_prints_the_1_6_4_table(tiff_movie, tmp_path, capsys):
    path, movie = tiff_movie
    out = tmp_path / "out.mrc"
    rc = motioncor2_main(["-InTiff", str(path), "-OutMrc", str(out), "-Patch", "5", "5", "-PixSize", "1",
                          "-FmDose", "1", "-kV", "300", "-SumRange", "0", "5", "-Gpu", "0",
                          "-LogDir", str(tmp_path / "logs")])
    captured = capsys.readouterr()
    assert rc == 0
    assert "-Gpu ignored" in captured.err
    for name in ("out.mrc", "out_DW.mrc", "out_DWS.mrc"):
        with mrcfile.open(tmp_path / name) as mrc:
            assert mrc.data.shape == (512, 512)
    for suffix in ("-Full.log", "-Patch-Patch.log", "-Patch-Frame.log"):
        assert (tmp_path / "logs" / f"mov{suffix}").exists()
    text = captured.out
    shifts = _logged_shifts(text)
    assert np.allclose(shifts[0], 0)
    truth = -(movie.motion_px - movie.motion_px[0])  # MotionCor logs the correction
    assert np.sqrt(np.mean((shifts - truth) ** 2)) < 0.1
    assert re.search(r"Total time: [0-9.]+ sec", text)


def test_relion_wrapper_contract_shifts_are_parsed_from_the_out_file(tiff_movie, tmp_path):
    """The exact argv RELION 3.1.3 builds for --use_motioncor2 (its executeMotioncor2)."""
    path, movie = tiff_movie
    stem = tmp_path / "mov"
    cmd = (f"semc-motioncor2  -InTiff {path} -OutMrc {stem}.mrc -LogFile {stem} -Bft 150 -PixSize 1 "
           f"-Patch 5 5 -FmRef 0 -Kv 300 -FmDose 1 -InitDose 0 -Gpu 0  >> {stem}.out 2>> {stem}.err")
    assert subprocess.run(cmd, shell=True).returncode == 0
    shifts = _relion_31_global_shifts((tmp_path / "mov.out").read_text())
    truth = -(movie.motion_px - movie.motion_px[0])
    assert shifts.shape == (16, 2) and np.sqrt(np.mean((shifts - truth) ** 2)) < 0.1
    patch_rows = [line.split() for line in (tmp_path / "mov0-Patch-Patch.log").read_text().splitlines()
                  if "#" not in line]
    assert len(patch_rows) == 25 * 16 and all(len(r) == 7 for r in patch_rows)
    assert (tmp_path / "mov_DW.mrc").exists()


def test_unknown_flag_is_an_error_that_names_it(capsys):
    assert motioncor2_main(["-InTiff", "x.tif", "-OutMrc", "o.mrc", "-Frobnicate", "3"]) == 2
    assert "-Frobnicate" in capsys.readouterr().err


def test_missing_movie_fails_with_status_1(tmp_path, capsys):
    assert motioncor2_main(["-InTiff", str(tmp_path / "nope.tif"), "-OutMrc", str(tmp_path / "o.mrc")]) == 1
    assert "not found" in capsys.readouterr().err


def test_serial_mode_processes_every_movie_in_a_folder(tiff_movie, tmp_path, capsys):
    path, _ = tiff_movie
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.tif", "b.tif"):
        (src / name).write_bytes(path.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    assert motioncor2_main(["-InTiff", str(src) + "/", "-OutMrc", str(out) + "/", "-Serial", "1"]) == 0
    assert (out / "a.mrc").exists() and (out / "b.mrc").exists()
    assert capsys.readouterr().out.count("added:") == 2


def test_outstar_writes_a_polishing_star_with_the_logged_shifts(tiff_movie, tmp_path, capsys):
    import starfile

    path, movie = tiff_movie
    out = tmp_path / "pol.mrc"
    rc = motioncor2_main(["-InTiff", str(path), "-OutMrc", str(out), "-Patch", "0", "0", "-PixSize", "0.8",
                          "-FmDose", "1.5", "-InitDose", "2", "-kV", "200", "-OutStar", "1"])
    assert rc == 0
    logged = _logged_shifts(capsys.readouterr().out)
    star = starfile.read(tmp_path / "pol.star", always_dict=True)
    general = star["general"]
    assert (general["rlnImageSizeX"], general["rlnImageSizeY"], general["rlnImageSizeZ"]) == (512, 512, 16)
    assert general["rlnMicrographOriginalPixelSize"] == pytest.approx(0.8)
    assert general["rlnMicrographDoseRate"] == pytest.approx(1.5)
    assert general["rlnMicrographPreExposure"] == pytest.approx(2.0)
    assert general["rlnVoltage"] == pytest.approx(200)
    shifts = star["global_shift"][["rlnMicrographShiftX", "rlnMicrographShiftY"]].to_numpy()
    assert list(star["global_shift"]["rlnMicrographFrameNumber"]) == list(range(1, 17))
    assert np.allclose(shifts, logged - logged[0], atol=0.01)  # the log is rounded to 2 decimals
    truth = -(movie.motion_px - movie.motion_px[0])
    assert np.sqrt(np.mean((shifts - truth) ** 2)) < 0.1


def test_crop_writes_the_centre_of_every_output(tiff_movie, tmp_path, capsys):
    path, _ = tiff_movie
    full, cropped = tmp_path / "full.mrc", tmp_path / "crop.mrc"
    common = ["-InTiff", str(path), "-Patch", "0", "0", "-PixSize", "1", "-FmDose", "1"]
    assert motioncor2_main([*common, "-OutMrc", str(full)]) == 0
    assert motioncor2_main([*common, "-OutMrc", str(cropped), "-Crop", "300", "200"]) == 0
    for suffix in ("", "_DW"):
        with mrcfile.open(tmp_path / f"full{suffix}.mrc") as a, mrcfile.open(tmp_path / f"crop{suffix}.mrc") as b:
            assert b.data.shape == (200, 300)
            assert np.allclose(b.data, a.data[156:356, 106:406], atol=1e-4)
    assert motioncor2_main([*common, "-OutMrc", str(tmp_path / "bad.mrc"), "-Crop", "600", "200"]) == 1
    assert "-Crop 600 200 does not fit" in capsys.readouterr().err
    assert not (tmp_path / "bad.mrc").exists()


def test_cs_runs_the_ctf_module_on_the_sum_and_writes_motioncor3s_files(tmp_path, capsys):
    from semc.simulation.movie import simulate_movie
    from semc.simulation.types import DetectorSpec, MovieSpec, OpticsSpec

    spec = MovieSpec(shape=(1024, 1024), n_frames=8, dose_per_frame_e_per_a2=4.0,
                     optics=OpticsSpec(defocus1_angstrom=16000.0, defocus2_angstrom=15000.0,
                                       astigmatism_azimuth_degree=30.0),
                     detector=DetectorSpec(gain_sigma=0.0))
    movie = simulate_movie(spec, 5)
    tifffile.imwrite(tmp_path / "ctf.tif", movie.frames.astype(np.uint8), compression="lzw")
    out = tmp_path / "ctf_out.mrc"
    argv = ["-InTiff", str(tmp_path / "ctf.tif"), "-OutMrc", str(out), "-PixSize", "1.0", "-kV", "300",
            "-Cs", "2.7", "-AmpCont", "0.07"]
    assert motioncor2_main(argv) == 0
    text = capsys.readouterr()
    assert "-Cs is accepted but has no effect" not in text.err
    assert "CTF results have been saved" in text.out
    # MotionCor3 names them after the input movie, in the output's folder
    assert (tmp_path / "ctf_Ctf.mrc").is_file()
    lines = (tmp_path / "ctf_Ctf.txt").read_text().splitlines()
    assert lines[0].startswith("# Columns: #1 micrograph number; #2 - defocus 1 [A]") and len(lines) == 2
    row = lines[1].split()
    assert row[0] == "1" and len(row) == 7
    df1, df2 = float(row[1]), float(row[2])
    assert (df1 + df2) / 2 == pytest.approx(15500.0, rel=0.02)
    assert abs(df1 - df2) == pytest.approx(1000.0, abs=250.0)


def test_ctf_module_is_skipped_without_a_pixel_size_as_motioncor3_does(tmp_path, capsys, tiff_movie):
    path, _ = tiff_movie
    status = motioncor2_main(["-InTiff", str(path), "-OutMrc", str(tmp_path / "o.mrc"), "-Cs", "2.7"])
    assert status == 0 and (tmp_path / "o.mrc").is_file()
    assert "Skip CTF estimation. Need the following parameters." in capsys.readouterr().out
    assert not (tmp_path / "mov_Ctf.txt").exists()


def test_inskips_leaves_out_matching_movies_in_serial_mode(tiff_movie, tmp_path, capsys):
    path, _ = tiff_movie
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a_001.tif", "a_002_bad.tif", "a_003.tif"):
        (folder / name).write_bytes(path.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    argv = ["-InTiff", str(folder) + "/", "-InSuffix", ".tif", "-Serial", "1", "-OutMrc", str(out) + "/",
            "-InSkips", "bad"]
    assert motioncor2_main(argv) == 0
    assert sorted(p.name for p in out.glob("*.mrc")) == ["a_001.mrc", "a_003.mrc"]
    assert "has no effect" not in capsys.readouterr().err


def test_tifforder_minus_one_takes_the_frames_last_first(tiff_movie, tmp_path, capsys):
    path, _ = tiff_movie
    shifts = {}
    for order in ("1", "-1"):
        out = tmp_path / f"o{order}.mrc"
        assert motioncor2_main(["-InTiff", str(path), "-OutMrc", str(out), "-TiffOrder", order]) == 0
        shifts[order] = _logged_shifts(capsys.readouterr().out)
    # the same motion, read backwards: relative to the (new) first frame, it is the old last frame's
    forward, backward = shifts["1"], shifts["-1"]
    np.testing.assert_allclose(backward, (forward - forward[-1])[::-1], atol=0.15)


def test_fullsum_writes_the_whole_frame_corrected_sum(tiff_movie, tmp_path, capsys):
    path, _ = tiff_movie
    out, full = tmp_path / "o.mrc", tmp_path / "full.mrc"
    assert motioncor2_main(["-InTiff", str(path), "-OutMrc", str(out), "-FullSum", str(full)]) == 0
    with mrcfile.open(full) as a, mrcfile.open(out) as b:
        early, final = np.array(a.data, dtype=np.float64), np.array(b.data, dtype=np.float64)
    assert early.shape == final.shape
    # without patches both are whole-frame corrections of the same frames: the same image up to the
    # resampling (the early one bilinear, the final one by Fourier phase ramps), which damps the noise
    # near Nyquist: equal once low-pass filtered
    smooth = [scipy.ndimage.gaussian_filter(img, 2.0)[8:-8, 8:-8].ravel() for img in (early, final)]
    assert np.corrcoef(*smooth)[0, 1] > 0.99
    assert early.mean() == pytest.approx(final.mean(), rel=1e-3)


def test_corrinterp_boosts_high_frequencies_as_motioncor3s_filter(tiff_movie, tmp_path, capsys):
    from semc.motioncorrection.calc.internal.output import interpolation_transfer

    path, _ = tiff_movie
    images = {}
    for flag in ("0", "1"):
        out = tmp_path / f"c{flag}.mrc"
        assert motioncor2_main(["-InTiff", str(path), "-OutMrc", str(out), "-CorrInterp", flag]) == 0
        with mrcfile.open(out) as mrc:
            images[flag] = np.fft.rfft2(np.array(mrc.data, dtype=np.float64))
    ratio = np.abs(images["1"]) / np.maximum(np.abs(images["0"]), 1e-12)
    expected = 1.0 / interpolation_transfer(images["0"].shape[:1] + ((images["0"].shape[1] - 1) * 2,))
    np.testing.assert_allclose(ratio[1:, 1:], expected[1:, 1:], rtol=1e-3)


def test_infmmotion_weights_each_frame_by_its_own_blur(tmp_path, capsys):
    from semc.motioncorrection.calc.internal.correct import _in_frame_motion_filters

    motion = np.array([[0.0, 0.0], [2.0, 0.0], [2.05, 0.0]])
    filt = _in_frame_motion_filters(motion, 32, 32)
    first = filt(0)
    assert filt(2) is None                                          # 0.05 px of motion: left alone
    fx = np.fft.rfftfreq(32)
    np.testing.assert_allclose(first[0], np.where(2 * fx < 1, np.sinc(2 * fx), 0.0), atol=1e-6)  # along x
    np.testing.assert_allclose(first[:, 0], 1.0)                    # across the motion: untouched
    movie = make_movie(shape=(256, 256), n_frames=8, dose_per_pixel=4.0, seed=14)
    tifffile.imwrite(tmp_path / "m.tif", movie.frames.astype(np.uint8), compression="lzw")
    assert motioncor2_main(["-InTiff", str(tmp_path / "m.tif"), "-OutMrc", str(tmp_path / "o.mrc"),
                            "-InFmMotion", "1"]) == 0
    assert "has no effect" not in capsys.readouterr().err


def test_outaln_then_inaln_sums_the_movie_again_without_aligning_it(tiff_movie, tmp_path, capsys):
    from semc.motioncorrection.aln import aln_read

    path, _ = tiff_movie
    first, again = tmp_path / "first.mrc", tmp_path / "again.mrc"
    common = ["-InTiff", str(path), "-Patch", "3", "3", "-PixSize", "1", "-FmDose", "1"]
    assert motioncor2_main(common + ["-OutMrc", str(first), "-OutAln", str(tmp_path / "aln")]) == 0
    capsys.readouterr()
    aln = aln_read(str(tmp_path / "aln" / "mov.aln"))
    assert aln.stack_size == (512, 512, 16) and aln.patches[:2] == (3, 3)
    assert aln.global_shifts_px.shape == (16, 2) and aln.patch_shifts_px.shape == (9, 16, 2)
    assert motioncor2_main(common + ["-OutMrc", str(again), "-InAln", str(tmp_path / "aln")]) == 0
    text = capsys.readouterr().out
    assert "alignment is bypassed" in text and "x Shift   y Shift" in text
    for suffix in ("", "_DW"):
        with mrcfile.open(tmp_path / f"first{suffix}.mrc") as a, mrcfile.open(tmp_path / f"again{suffix}.mrc") as b:
            np.testing.assert_allclose(b.data, a.data, rtol=1e-3, atol=1e-2 * float(np.abs(a.data).max()))


def test_a_broken_alignment_file_is_a_clear_error(tiff_movie, tmp_path, capsys):
    path, _ = tiff_movie
    (tmp_path / "aln").mkdir()
    (tmp_path / "aln" / "mov.aln").write_text("setting\n   stackSize: 512 512 16 1\nglobalShift\n   0  +0.1\n")
    status = motioncor2_main(["-InTiff", str(path), "-OutMrc", str(tmp_path / "o.mrc"), "-InAln",
                              str(tmp_path / "aln")])
    err = capsys.readouterr().err
    assert status == 1 and "does not parse" in err and "mov.aln" in err
    assert not (tmp_path / "o.mrc").exists()


@pytest.mark.parametrize("flag", ["-OutMrc", "-FullSum", "-OutAln"])
def test_an_output_that_cannot_be_written_is_a_clear_error(tiff_movie, tmp_path, capsys, flag):
    path, _ = tiff_movie
    missing = tmp_path / "no" / "such" / "folder"
    argv = {"-OutMrc": ["-OutMrc", str(missing / "o.mrc")],
            "-FullSum": ["-OutMrc", str(tmp_path / "o.mrc"), "-FullSum", str(missing / "full.mrc")],
            "-OutAln": ["-OutMrc", str(tmp_path / "o.mrc"), "-OutAln", str(tmp_path / "o.mrc")]}[flag]
    status = motioncor2_main(["-InTiff", str(path), *argv])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    assert "semc-motioncor2: error:" in err and ("cannot write" in err or "exists" in err)
