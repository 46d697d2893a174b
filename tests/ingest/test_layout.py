"""File classification, Leginon names, USC session discovery and the gain orientation mapping."""

from __future__ import annotations

import numpy as np
import pytest

from semc.base.errors import CorruptInput, InvalidParameters
from semc.base.io import orient_gain
from semc.ingest.layout import (
    FilePatterns,
    epu_metadata_path,
    leginon_filename,
    sessions_find,
    unique_filename,
)
from semc.ingest.register import gain_shape_check, leginon_orientation
from semc.simulation.layouts import _gain_stored, usc_session_dir


@pytest.mark.parametrize("name, kind", [
    ("FoilHole_5850127_Data_5798426_5798428_20221104_061329_fractions.tiff", "movie"),
    ("FoilHole_5850127_Data_5798426_5798428_20221104_061329_EER.eer", "movie"),
    ("FoilHole_5850127_Data_5798426_5798428_20221104_061329.mrc", None),  # EPU's integrated image
    ("FoilHole_5850127_Data_5798426_5798428_20221104_061329.xml", None),
    ("GridSquare_5798426_20221104_055012.mrc", None),
    ("s1_00003_Nov23_13.20.32.tif", "movie"),
    ("s1_00003_Nov23_13.20.32.tif.mdoc", None),
    ("plain.mrcs", "movie"),
    ("20221104_EER_GainReference.gain", "gain"),
    ("CountRef_s1.mrc", "gain"),
    ("K3_gain_ref.tiff", "gain"),
    (".s1_00004.tif.part", None),
    ("s1_00004.tif.tmp", None),
    ("preview.jpg", None),
])
def test_default_patterns_take_movies_and_gains_and_nothing_else(name, kind):
    assert FilePatterns().kind(name) == kind


def test_patterns_are_configurable_and_checked():
    patterns = FilePatterns(movies=("*.eer",), excludes=("*_test*",))
    assert patterns.kind("a.tif") is None and patterns.kind("a.EER") == "movie"
    assert patterns.kind("a_test.eer") is None
    with pytest.raises(InvalidParameters):
        FilePatterns(movies=("raw/*.tif",))
    with pytest.raises(InvalidParameters):
        FilePatterns(movies=())


@pytest.mark.parametrize("path, expected", [
    ("/x/FoilHole_1_Data_2_3_20221104_061329_fractions.tiff", "FoilHole_1_Data_2_3_20221104_061329"),
    ("/x/FoilHole_1_Data_2_3_20221104_061329_EER.eer", "FoilHole_1_Data_2_3_20221104_061329"),
    ("/x/s1_00003_Nov23_13.20.32.tif", "s1_00003_Nov23_13.20.32"),
    ("/x/26nov23a_00001enn.frames.mrc", "26nov23a_00001enn"),
    ("/x/a movie (copy).mrc", "a_movie_copy"),
])
def test_leginon_filenames_are_stems_made_safe(path, expected):
    assert leginon_filename(path) == expected


def test_a_repeated_name_gets_a_path_suffix_that_does_not_change():
    first = unique_filename("m1", "/a/m1.tif", {"m1"})
    assert first.startswith("m1_") and first == unique_filename("m1", "/a/m1.tif", {"m1"})
    assert first != unique_filename("m1", "/b/m1.tif", {"m1"}) and unique_filename("m2", "/a/m2.tif", {"m1"}) == "m2"


def test_epu_metadata_is_the_xml_beside_the_fractions():
    assert epu_metadata_path("/d/FoilHole_1_Data_2_3_20221104_061329_fractions.tiff") == \
        "/d/FoilHole_1_Data_2_3_20221104_061329.xml"
    assert epu_metadata_path("/d/s1_00003.tif") is None


def test_usc_layout_finds_each_session_with_its_project_user_and_processed_folder(tmp_path):
    for project, user, session in (("p1", "alice", "s1"), ("p1", "bob", "s2"), ("p2", "alice", "s3")):
        usc_session_dir(tmp_path, project, user, session).mkdir(parents=True)
    (tmp_path / "p3" / "sessions" / "carol" / "s4").mkdir(parents=True)  # no raw folder: not a session yet
    (tmp_path / "notes").mkdir()
    found = sessions_find(tmp_path, layout="usc")
    assert [(f.project, f.user, f.name) for f in found] == [("p1", "alice", "s1"), ("p1", "bob", "s2"),
                                                            ("p2", "alice", "s3")]
    assert found[0].raw == tmp_path / "p1/sessions/alice/s1/raw"
    assert found[0].processed == tmp_path / "p1/sessions/alice/s1/processed"


def test_a_single_session_folder_is_named_after_itself_or_its_parent_when_called_raw(tmp_path):
    (tmp_path / "grid3" / "raw").mkdir(parents=True)
    [plain] = sessions_find(tmp_path / "grid3", layout="session")
    assert plain.name == "grid3" and plain.processed == tmp_path / "grid3" / "processed"
    [raw] = sessions_find(tmp_path / "grid3" / "raw", layout="session")
    assert raw.name == "grid3" and raw.processed == tmp_path / "grid3" / "processed"
    [named] = sessions_find(tmp_path / "grid3", layout="session", session_name="26nov23 grid/3")
    assert named.name == "26nov23_grid_3"


@pytest.mark.parametrize("rotate", [0, 1, 2, 3])
@pytest.mark.parametrize("flip", [0, 1, 2])
def test_motioncor_orientation_maps_to_leginons_rotate_and_up_down_flip(rotate, flip):
    gain = np.arange(12, dtype=np.float32).reshape(3, 4)
    leginon_rotate, leginon_flip = leginon_orientation(rotate, flip)
    expected = orient_gain(gain, rotate_90=rotate, flip=flip, convention="motioncor")
    assert np.array_equal(orient_gain(gain, rotate_90=leginon_rotate, flip=leginon_flip, convention="leginon"),
                          expected)
    # the simulator stores the gain so that this orientation brings it back
    assert np.array_equal(orient_gain(_gain_stored(gain, rotate, flip), rotate_90=rotate, flip=flip), gain)


def test_a_gain_of_the_wrong_shape_is_refused_with_a_hint():
    gain_shape_check((4092, 5760), (4092, 5760), rotate=0, flip=0, path="g.gain")
    gain_shape_check((4096, 4096), (8192, 8192), rotate=0, flip=0, path="g.gain")  # EER 8K rendering
    gain_shape_check((5760, 4092), (4092, 5760), rotate=1, flip=0, path="g.gain")
    with pytest.raises(CorruptInput, match="quarter") as info:
        gain_shape_check((5760, 4092), (4092, 5760), rotate=0, flip=0, path="g.gain")
    assert info.value.path == "g.gain"
    with pytest.raises(CorruptInput, match="1000x1000"):
        gain_shape_check((1000, 1000), (4092, 5760), rotate=0, flip=0, path="g.gain")
