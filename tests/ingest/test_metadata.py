"""EPU XML and SerialEM mdoc parsing: the real EPU file gives the values it holds; the simulator's files
give back what was written; malformed files raise typed errors naming the file."""

from __future__ import annotations

import datetime as dt
import pickle

import pytest

from semc.base.errors import CorruptInput, InputMissing
from semc.ingest.metadata import (
    camera_instrument_name,
    epu_ids_from_path,
    epu_xml_parse,
    mdoc_metadata,
    mdoc_text_parse,
)
from semc.simulation.layouts import epu_xml_text, serialem_mdoc_text
from tests.realdata import REALDATA

REAL_XML = REALDATA / "metadata" / "FoilHole_5850127_Data_5798426_5798428_20221104_061329.xml"


@pytest.mark.skipif(not REAL_XML.is_file(), reason="real-data oracles not found (SEMC_REALDATA)")
def test_the_real_epu_xml_parses_to_the_values_it_holds():
    meta = epu_xml_parse(REAL_XML)
    assert meta.source == "epu" and meta.software == "EPU 3.1.0.4506"
    assert meta.pixel_size_angstrom == pytest.approx(1.2851950059733497)  # SpatialScale/pixelSize, m -> Å
    assert meta.image_width_px == 2880 and meta.binning == 2  # ReadoutArea width, camera Binning
    assert meta.voltage_kv == pytest.approx(300.0)
    assert meta.magnification == 130000
    assert meta.total_dose_e_per_a2 == pytest.approx(63.993040352787363)  # Dose 6.399e21 e/m²
    # the dose on the camera (e/px) EPU also records is the same dose over this pixel area
    assert float(meta.extra["DoseOnCamera"]) == pytest.approx(meta.total_dose_e_per_a2 * meta.pixel_size_angstrom ** 2,
                                                              rel=1e-4)
    assert meta.defocus_m == pytest.approx(-1.4e-6)  # AppliedDefocus, not the optics readout 7.25e-7
    assert meta.exposure_time_s == pytest.approx(2.0) and meta.n_fractions == 70
    expected = dt.datetime(2022, 11, 4, 6, 13, 35, 537803, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert meta.acquired_at == pytest.approx(expected.timestamp())
    assert meta.camera_name == "BioQuantum K3" and camera_instrument_name(meta.camera_name) == "GatanK3"
    assert meta.microscope_name == "TITAN52337880"
    assert meta.stage_xyz_m == pytest.approx((-0.00083155677089999977, -0.00015512062399999991,
                                              -2.7426060673599979e-05))
    assert meta.stage_alpha_rad == pytest.approx(2.6154369497084318e-07)
    assert meta.spot_size == 4 and meta.probe_mode == "NanoProbe"
    assert meta.energy_filter is True and meta.energy_filter_width_ev == pytest.approx(20.0)
    assert meta.foil_hole == "5850127" and meta.grid_square is None  # the file sits outside its GridSquare folder


def test_grid_square_and_foil_hole_come_from_the_epu_path():
    path = "/d/Images-Disc1/GridSquare_5798426/Data/FoilHole_5850127_Data_5798426_5798428_20221104_061329.xml"
    assert epu_ids_from_path(path) == ("5798426", "5850127")


def test_a_simulated_epu_xml_round_trips(tmp_path):
    when = dt.datetime(2026, 11, 23, 12, 0, 5, 250000, tzinfo=dt.UTC)
    path = tmp_path / "FoilHole_1_Data_2_3_20261123_120005.xml"
    path.write_text(epu_xml_text(pixel_size_m=2.0e-10, readout=(512, 480), binning=2, voltage_v=200000.0,
                                 dose_e_per_m2=4.1e21, applied_defocus_m=-1.8e-6, exposure_time_s=1.5,
                                 n_fractions=40, acquired=when, magnification=81000,
                                 stage_xyz_m=(1e-5, -2e-5, 3e-6)))
    meta = epu_xml_parse(path)
    assert (meta.pixel_size_angstrom, meta.image_width_px, meta.voltage_kv, meta.magnification) == (
        pytest.approx(2.0), 512, pytest.approx(200.0), 81000)
    assert meta.total_dose_e_per_a2 == pytest.approx(41.0) and meta.defocus_m == pytest.approx(-1.8e-6)
    assert meta.n_fractions == 40 and meta.exposure_time_s == pytest.approx(1.5)
    assert meta.acquired_at == pytest.approx(when.timestamp())
    assert meta.stage_xyz_m == pytest.approx((1e-5, -2e-5, 3e-6))


@pytest.mark.parametrize("text, message", [
    ("<MicroscopeImage><name>", "not well-formed"),
    ("<Other/>", "not MicroscopeImage"),
    (('<MicroscopeImage xmlns="http://schemas.datacontract.org/2004/07/Fei.SharedObjects"><microscopeData><gun>'
     "<AccelerationVoltage>300000</AccelerationVoltage></gun></microscopeData></MicroscopeImage>"), "no pixel size"),
])
def test_malformed_epu_xml_raises_corrupt_input_naming_the_file(tmp_path, text, message):
    path = tmp_path / "FoilHole_1_Data_2_3_20261123_120005.xml"
    path.write_text(text)
    with pytest.raises(CorruptInput, match=message) as info:
        epu_xml_parse(path)
    assert info.value.path == str(path) and info.value.step == "ingest"
    assert pickle.loads(pickle.dumps(info.value)) == info.value


def test_a_missing_epu_xml_raises_input_missing(tmp_path):
    with pytest.raises(InputMissing):
        epu_xml_parse(tmp_path / "absent.xml")


def test_a_simulated_serialem_mdoc_round_trips():
    when = dt.datetime(2026, 11, 23, 13, 20, 32)
    text = serialem_mdoc_text(movie_name="s1_00003_Nov23_13.20.32.tif", pixel_size_angstrom=0.83,
                              image_size=(5760, 4092), voltage_kv=300, dose_e_per_a2=50.0, n_frames=40,
                              target_defocus_um=-1.6, exposure_time_s=2.0, acquired=when, magnification=105000,
                              stage_xyz_um=(24.2868, -41.113, -29.8365), gain_name="CountRef_s1.mrc", session="s1")
    meta = mdoc_metadata(mdoc_text_parse(text, path="x.mdoc"), movie_name="s1_00003_Nov23_13.20.32.tif")
    assert meta.source == "serialem" and meta.software == "SerialEM"
    assert (meta.pixel_size_angstrom, meta.image_width_px, meta.voltage_kv) == (pytest.approx(0.83), 5760,
                                                                                 pytest.approx(300.0))
    assert meta.total_dose_e_per_a2 == pytest.approx(50.0) and meta.n_fractions == 40
    assert meta.defocus_m == pytest.approx(-1.6e-6)  # TargetDefocus wins over the relative Defocus
    assert meta.acquired_at == pytest.approx(when.astimezone().timestamp())
    assert meta.stage_xyz_m == pytest.approx((24.2868e-6, -41.113e-6, -29.8365e-6))
    assert meta.gain_reference == "CountRef_s1.mrc" and meta.rotation_and_flip == 0


SESSION_MDOC = """PixelSpacing = 1.1
Voltage = 200
ImageFile = frames.mrc

[T = SerialEM: Digitized on a Glacios        26-Oct-23  14:55:45]

[FrameSet = 0]
ExposureDose = 0
FrameDosesAndNumber = 1.5 10 1.0 5
PixelSpacing = 0.694291
Binning = 0.5
TargetDefocus = -2.2
SubFramePath = X:\\Anna_20171223\\1015B_g1_0000_Dec23_13.20.21.tif
NumSubFrames = 15
DateTime = 23-Dec-17  13:20:32

[FrameSet = 1]
ExposureDose = 0
DoseRate = 12.5
ExposureTime = 2
PixelSpacing = 0.694291
Binning = 0.5
Defocus = -1.4
SubFramePath = X:\\Anna_20171223\\1015B_g1_0001_Dec23_13.21.00.tif
DateTime = 23-Dec-2017  13:21:00
"""


def test_a_session_mdoc_gives_each_movie_its_own_section_and_dose_fallbacks():
    document = mdoc_text_parse(SESSION_MDOC, path="Frames.mdoc")
    assert document.globals["Voltage"] == "200" and len(document.sections) == 2
    first = mdoc_metadata(document, movie_name="1015B_g1_0000_Dec23_13.20.21.tif")
    assert first.total_dose_e_per_a2 == pytest.approx(1.5 * 10 + 1.0 * 5)  # FrameDosesAndNumber pairs
    assert first.pixel_size_angstrom == pytest.approx(0.694291) and first.voltage_kv == pytest.approx(200.0)
    assert first.defocus_m == pytest.approx(-2.2e-6) and first.n_fractions == 15
    assert first.acquired_at == pytest.approx(dt.datetime(2017, 12, 23, 13, 20, 32).astimezone().timestamp())
    second = mdoc_metadata(document, movie_name="1015B_g1_0001_Dec23_13.21.00.tif")
    # DoseRate is per unbinned camera pixel per second: the unbinned pixel is 0.694291 / 0.5 Å
    assert second.total_dose_e_per_a2 == pytest.approx(12.5 * 2 / (0.694291 / 0.5) ** 2)
    assert second.defocus_m == pytest.approx(-1.4e-6)  # no TargetDefocus: the Defocus value
    assert second.acquired_at == pytest.approx(dt.datetime(2017, 12, 23, 13, 21, 0).astimezone().timestamp())
    with pytest.raises(CorruptInput, match="no section"):
        mdoc_metadata(document, movie_name="another.tif")


@pytest.mark.parametrize("text, message", [
    ("PixelSpacing = 1\n[FrameSet = 0]\nthis is not a key value line\n", "line 3"),
    ("Voltage = 300\n[FrameSet = 0]\nExposureDose = 3\n", "no PixelSpacing"),
    ("PixelSpacing = 1\n[FrameSet = 0]\nDateTime = yesterday\n", "DateTime"),
    ("PixelSpacing = abc\n[FrameSet = 0]\n", "PixelSpacing"),
])
def test_malformed_mdoc_raises_corrupt_input(text, message):
    with pytest.raises(CorruptInput, match=message) as info:
        mdoc_metadata(mdoc_text_parse(text, path="bad.mdoc"))
    assert info.value.path == "bad.mdoc"


@pytest.mark.parametrize("commercial, eer, expected", [
    ("BioQuantum K3", False, "GatanK3"), ("K2 Summit", False, "GatanK2"), ("Falcon 4i", True, "Falcon4i"),
    ("Falcon 4", True, "Falcon4EC"), (None, True, "Falcon4EC"), ("Ceta 16M", False, "Ceta16M"), (None, False, "Camera"),
])
def test_camera_names_follow_leginons_instrument_names(commercial, eer, expected):
    assert camera_instrument_name(commercial, eer=eer) == expected
