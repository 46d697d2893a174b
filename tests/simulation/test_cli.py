"""``semc simulate`` command line: movie, tiltseries and session subcommands."""

from __future__ import annotations

import json

import pytest

from semc.simulation.cli import build_parser, main, movie_spec_from_args


def test_movie_flags_reach_the_specification():
    args = build_parser().parse_args(["movie", "--out", "x", "--defocus", "2.0", "--astigmatism", "400",
                                      "--azimuth", "20", "--frames", "12", "--shape", "64", "96", "--no-blur"])
    spec = movie_spec_from_args(args)
    assert spec.optics.defocus1_angstrom == 20200 and spec.optics.defocus2_angstrom == 19800
    assert spec.optics.astigmatism_azimuth_degree == 20 and spec.n_frames == 12 and spec.shape == (64, 96)
    assert spec.motion.intra_frame_blur is False


def test_movie_subcommand_writes_the_movie_and_its_truth(tmp_path, capsys):
    rc = main(["movie", "--out", str(tmp_path), "--name", "m1", "--format", "mrc", "--shape", "64", "64",
               "--frames", "3", "--particles", "2", "--seed", "4"])
    assert rc == 0
    truth = json.loads((tmp_path / "m1.truth.json").read_text())
    assert truth["seed"] == 4 and truth["paths"]["movie"] == "m1.frames.mrc"
    assert "m1.frames.mrc" in capsys.readouterr().out


def test_tiltseries_subcommand_runs_a_yaml_configuration(tmp_path):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text("root: out\nshape: [48, 48]\npixel_size_angstrom: 6\ntilt_step_degree: 60\n"
                   "frames_per_tilt: 2\nassembler_options: {n_particles: 1, models: [small], margin_angstrom: 10}\n")
    assert main(["tiltseries", "--config", str(cfg)]) == 0
    assert (tmp_path / "out" / "ts_0" / "ts_0.rawtlt").read_text().split() == ["-60.00", "0.00", "60.00"]


def test_session_subcommand_with_files_only_writes_the_leginon_layout_and_no_rows(tmp_path):
    args = ["session", "--name", "s", "--root", str(tmp_path), "--exposures", "2", "--camera", "small",
            "--particles", "2", "--files-only"]
    assert main(args) == 0
    frames = tmp_path / "frames" / "s" / "rawdata"
    assert (frames / "s_00002enn.frames.mrc").exists() and (frames / "s_00002enn.truth.json").exists()
    assert (tmp_path / "leginon" / "s" / "rawdata" / "s_00001enn.mrc").exists()


def test_unknown_camera_is_a_usage_error():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["session", "--name", "s", "--root", "r", "--camera", "k2"])


def test_movie_subcommand_takes_a_pdb_structure_as_particle_model(tmp_path):
    pdb = tmp_path / "tiny.pdb"
    pdb.write_text("".join(
        f"ATOM  {i:5d}  CA  ALA A{i:4d}    {10 + 3 * i:8.3f}{5.0:8.3f}{2.0 * i:8.3f}  1.00 20.00           C\n"
        for i in range(1, 30)))
    rc = main(["movie", "--out", str(tmp_path), "--name", "p", "--format", "mrc", "--shape", "64", "64",
               "--frames", "2", "--particles", "3", "--structure", str(pdb)])
    assert rc == 0
    truth = json.loads((tmp_path / "p.truth.json").read_text())
    assert {p["model"] for p in truth["particles"]} == {"tiny"}
