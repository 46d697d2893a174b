"""Simulated sessions laid out as EPU and SerialEM write them, for the watcher (``semc watch``).

:func:`layout_prepare` simulates a session (:func:`semc.simulation.session.session_run`, files
only) in a staging folder, then plans where each movie goes and what its metadata file says:

- ``epu``: ``<dir>/Images-Disc1/GridSquare_<id>/Data/FoilHole_<hole>_Data_<a>_<b>_<date>_<time>_fractions.<ext>``
  (``_EER.eer`` for EER) with its ``MicroscopeImage`` XML beside it (same element names and
  namespaces as EPU 3's; the integrated image it describes is binned by ``epu_image_binning``, as
  EPU's often is relative to the fractions), and the gain reference ``<dir>/<session>_GainReference.gain``
  (a float32 TIFF);
- ``serialem``: ``<dir>/<session>_<nnnnn>_<Mon><dd>_<hh.mm.ss>.<ext>`` with ``<movie>.mdoc`` (one
  ``[FrameSet = 0]``), and the gain ``<dir>/CountRef_<session>.mrc``.

The gain file is stored so that MotionCor's ``-RotGain r -FlipGain f`` with
``gain_orientation=(r, f)`` brings it onto the frames (the orientation a site must give).
Nothing is in the session folder until it is placed: :func:`exposure_place` (atomically, metadata
in the program's order), :func:`exposure_place_slowly` (the movie written in place, chunk by chunk)
or :func:`exposure_place_truncated` (a transfer that never finishes). The ground truth stays in
the staging folder (``LayoutExposure.truth``).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from semc.base import units
from semc.base.errors import InvalidParameters
from semc.base.io import read_image, write_mrc
from semc.simulation.session import SessionSpec, session_plan, session_run

__all__ = [
    "LAYOUT_STYLES",
    "LayoutExposure",
    "LayoutSession",
    "epu_xml_text",
    "exposure_place",
    "exposure_place_slowly",
    "exposure_place_truncated",
    "layout_prepare",
    "layout_write",
    "serialem_mdoc_text",
    "usc_session_dir",
]

LAYOUT_STYLES = ("epu", "serialem")
_EXT = {"mrc": ".mrc", "tiff": ".tiff", "eer": ".eer"}


@dataclass(frozen=True, slots=True)
class LayoutExposure:
    """One exposure: its complete movie in staging, where it goes, its metadata and ground truth."""

    index: int
    staged: Path
    movie: Path
    metadata: Path
    metadata_text: str
    truth: Path
    acquired_at: float
    style: str


@dataclass(frozen=True, slots=True)
class LayoutSession:
    """A planned session folder (nothing placed yet, except the gain reference)."""

    style: str
    directory: Path
    staging: Path
    spec: SessionSpec
    gain: Path
    gain_orientation: tuple[int, int]
    exposures: tuple[LayoutExposure, ...]


def usc_session_dir(root: Path, project: str, user: str, session: str) -> Path:
    """The raw folder of a session in the USC CryoEM service's layout."""
    return Path(root) / project / "sessions" / user / session / "raw"


def _gain_stored(gain: np.ndarray, rotate: int, flip: int) -> np.ndarray:
    """The array whose MotionCor orientation (rotate ``rotate`` quarter turns, then flip) is ``gain``."""
    out = gain
    if flip == 1:
        out = out[::-1, :]
    elif flip == 2:
        out = out[:, ::-1]
    return np.ascontiguousarray(np.rot90(out, rotate))


def _timestamp(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone(dt.timedelta(hours=-5)))


def epu_xml_text(*, pixel_size_m: float, readout: tuple[int, int], binning: int, voltage_v: float,
                 dose_e_per_m2: float, applied_defocus_m: float, exposure_time_s: float, n_fractions: int,
                 acquired: dt.datetime, magnification: int, stage_xyz_m: tuple[float, float, float],
                 camera: str = "BioQuantum K3", microscope: str = "TITAN52337880") -> str:
    """An EPU ``MicroscopeImage`` XML with the values EPU 3 writes (structure of a real file)."""
    i = 'xmlns:i="http://www.w3.org/2001/XMLSchema-instance"'
    arr = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
    xsd = 'xmlns:b="http://www.w3.org/2001/XMLSchema"'
    unit = ('<unit xmlns:a="http://schemas.datacontract.org/2004/07/Fei.Common.Types">'
            "<a:_x003C_PrefixExponent_x003E_k__BackingField>1</a:_x003C_PrefixExponent_x003E_k__BackingField>"
            "<a:_x003C_Symbol_x003E_k__BackingField>m</a:_x003C_Symbol_x003E_k__BackingField></unit>")

    def kv(key: str, kind: str, value) -> str:
        return (f'<a:KeyValueOfstringanyType><a:Key>{key}</a:Key><a:Value i:type="b:{kind}" {xsd}>{value}'
                "</a:Value></a:KeyValueOfstringanyType>")

    x, y, z = stage_xyz_m
    width, height = readout
    return (
        f'<MicroscopeImage xmlns="http://schemas.datacontract.org/2004/07/Fei.SharedObjects" {i}>'
        f"<name>Empty</name><uniqueID>00000000-0000-0000-0000-{acquired.strftime('%H%M%S%f')[:12]}</uniqueID>"
        f'<CustomData xmlns:a="{arr}">'
        + kv("Dose", "double", repr(dose_e_per_m2)) + kv("AppliedDefocus", "double", repr(applied_defocus_m))
        + kv("DetectorCommercialName", "string", camera) + kv("BinaryResult.Detector", "string", "EF-CCD")
        + "</CustomData><IntensityScale i:nil=\"true\"/>"
        f"<SpatialScale><pixelSize><x><numericValue>{pixel_size_m!r}</numericValue>{unit}</x>"
        f"<y><numericValue>{pixel_size_m!r}</numericValue>{unit}</y></pixelSize></SpatialScale>"
        "<microscopeData><acquisition>"
        f"<acquisitionDateTime>{acquired.isoformat(timespec='microseconds')}</acquisitionDateTime><camera>"
        f'<Binning xmlns:a="http://schemas.datacontract.org/2004/07/System.Drawing"><a:x>{binning}</a:x>'
        f"<a:y>{binning}</a:y></Binning>"
        f'<CameraSpecificInput xmlns:a="{arr}">'
        '<a:KeyValueOfstringanyType><a:Key>FractionationSettings</a:Key><a:Value i:type="b:EquidistantFractionation"'
        ' xmlns:b="http://schemas.datacontract.org/2004/07/Fei.Applications.Common.Omp.Interface">'
        f"<b:NumberOffractions>{n_fractions}</b:NumberOffractions></a:Value></a:KeyValueOfstringanyType>"
        + kv("ElectronCountingEnabled", "boolean", "true")
        + f"</CameraSpecificInput><ExposureTime>{exposure_time_s!r}</ExposureTime><Name>EF-CCD</Name>"
        f'<ReadoutArea xmlns:a="http://schemas.datacontract.org/2004/07/System.Drawing"><a:height>{height}'
        f"</a:height><a:width>{width}</a:width><a:x>0</a:x><a:y>0</a:y></ReadoutArea></camera></acquisition>"
        "<core><ApplicationSoftware>EPU</ApplicationSoftware><ApplicationSoftwareVersion>3.1.0.4506"
        "</ApplicationSoftwareVersion></core>"
        f"<gun><AccelerationVoltage>{voltage_v:.0f}</AccelerationVoltage></gun>"
        f"<instrument><ComputerName>{microscope}</ComputerName><InstrumentModel>{microscope}</InstrumentModel>"
        "</instrument><optics><Defocus>1E-07</Defocus>"
        "<EnergyFilter><EnergySelectionSlitInserted>true</EnergySelectionSlitInserted>"
        "<EnergySelectionSlitWidth>20</EnergySelectionSlitWidth></EnergyFilter>"
        '<ImageShift xmlns:a="http://schemas.datacontract.org/2004/07/Fei.Types"><a:_x>0</a:_x><a:_y>0</a:_y>'
        "</ImageShift><ProbeMode>NanoProbe</ProbeMode><SpotIndex>4</SpotIndex>"
        f"<TemMagnification><NominalMagnification>{magnification}</NominalMagnification></TemMagnification>"
        f"</optics><stage><Position><A>0</A><B>0</B><X>{x!r}</X><Y>{y!r}</Y><Z>{z!r}</Z></Position></stage>"
        "</microscopeData></MicroscopeImage>")


def serialem_mdoc_text(*, movie_name: str, pixel_size_angstrom: float, image_size: tuple[int, int],
                       voltage_kv: float, dose_e_per_a2: float, n_frames: int, target_defocus_um: float,
                       exposure_time_s: float, acquired: dt.datetime, magnification: int,
                       stage_xyz_um: tuple[float, float, float], gain_name: str, session: str) -> str:
    """A SerialEM per-movie ``.mdoc`` (one ``[FrameSet = 0]``), as SerialEM 4 writes beside saved frames."""
    x, y, z = stage_xyz_um
    nx, ny = image_size
    stamp = acquired.strftime("%d-%b-%y  %H:%M:%S")
    lines = [
        f"PixelSpacing = {pixel_size_angstrom:g}", f"Voltage = {voltage_kv:g}", f"ImageFile = {movie_name}",
        f"ImageSize = {nx} {ny}", "DataMode = 1", "",
        f"[T = SerialEM: Digitized on a simulated Krios        {stamp}]", "",
        "[FrameSet = 0]", "TiltAngle = 0.00291", f"StagePosition = {x:g} {y:g}", f"StageZ = {z:g}",
        f"Magnification = {magnification}", "Intensity = 0.114429", f"ExposureDose = {dose_e_per_a2:g}",
        f"PixelSpacing = {pixel_size_angstrom:g}", "SpotSize = 8", f"Defocus = {target_defocus_um + 0.07:g}",
        "ImageShift = 0.0214 -0.0107", "RotationAngle = -94.0936", f"ExposureTime = {exposure_time_s:g}",
        "Binning = 1", "CameraIndex = 1", "DividedBy2 = 0", "MagIndex = 31", "CountsPerElectron = 1",
        f"TargetDefocus = {target_defocus_um:g}", f"SubFramePath = X:\\{session}\\{movie_name}",
        f"NumSubFrames = {n_frames}", f"FrameDosesAndNumber = {dose_e_per_a2 / n_frames:g} {n_frames}",
        f"DateTime = {stamp}", "NavigatorLabel = 12-3", f"GainReference = {gain_name}", "RotationAndFlip = 0", "",
    ]
    return "\n".join(lines)


def _plan_resized(plan, frame_shape: tuple[int, int] | None, n_frames: int | None):
    exposures = []
    for exposure in plan.exposures:
        movie = exposure.movie
        frames = n_frames or movie.n_frames
        resized = replace(movie, shape=tuple(frame_shape or movie.shape), n_frames=frames,
                          dose_per_frame_e_per_a2=movie.dose_per_frame_e_per_a2 * movie.n_frames / frames)
        exposures.append(replace(exposure, movie=resized))
    return replace(plan, exposures=tuple(exposures))


def layout_prepare(spec: SessionSpec, *, style: str, directory: Path, staging: Path,
                   gain_orientation: tuple[int, int] = (0, 0), epu_image_binning: int = 2,
                   start_epoch: float = 1_700_000_000.0, reuse_staging: bool = True,
                   frame_shape: tuple[int, int] | None = None, n_frames: int | None = None) -> LayoutSession:
    """Simulate ``spec`` in ``staging`` and plan its layout in ``directory`` (the gain is written there now).

    With ``reuse_staging``, a staging folder that already holds this spec's simulation is used as it is
    (several layouts of one simulated session). ``frame_shape``/``n_frames`` replace the camera's
    (smaller movies for tests that need files, not physics); the total dose stays the same.

    Raises
    ------
    InvalidParameters
        Unknown style or orientation.
    """
    if style not in LAYOUT_STYLES:
        raise InvalidParameters(f"style must be one of {', '.join(LAYOUT_STYLES)}", step="simulation")
    rotate, flip = gain_orientation
    if rotate not in (0, 1, 2, 3) or flip not in (0, 1, 2):
        raise InvalidParameters("gain orientation is (rotate 0..3, flip 0..2)", step="simulation")
    plan = session_plan(replace(spec, root=Path(staging)))
    if frame_shape is not None or n_frames is not None:
        plan = _plan_resized(plan, frame_shape, n_frames)
    staged = [(e.movie_path, e.movie_path.parent / f"{e.filename}.truth.json") for e in plan.exposures]
    if not (reuse_staging and plan.gain_path.is_file() and all(t.is_file() for _m, t in staged)):
        staged = [(f.movie, f.truth) for f in session_run(plan, realtime=False)]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    gain, _ = read_image(plan.gain_path)
    stored = _gain_stored(np.asarray(gain, dtype=np.float32), rotate, flip)
    if style == "epu":
        import tifffile

        gain_path = directory / f"{spec.name}_GainReference.gain"
        tifffile.imwrite(gain_path, stored)
    else:
        gain_path = directory / f"CountRef_{spec.name}.mrc"
        write_mrc(gain_path, stored, pixel_size_angstrom=None)
    exposures = []
    for exposure, (staged_movie, truth) in zip(plan.exposures, staged):
        acquired = start_epoch + exposure.arrival_offset_s + 60.0 * exposure.index
        movie_spec = exposure.movie
        ny, nx = movie_spec.shape
        total = movie_spec.dose_per_frame_e_per_a2 * movie_spec.n_frames
        defocus_a = 0.5 * (movie_spec.optics.defocus1_angstrom + movie_spec.optics.defocus2_angstrom)
        when = _timestamp(acquired)
        stage = (1e-5 * exposure.index, -2e-5 * exposure.index, 3e-6)
        exposure_s = movie_spec.n_frames * plan.camera.frame_time_ms / 1000.0
        if style == "epu":
            square, hole = 1000 + exposure.index // 4, 5000 + exposure.index
            base = f"FoilHole_{hole}_Data_{7000 + exposure.index}_{8000 + exposure.index}_{when:%Y%m%d_%H%M%S}"
            folder = directory / "Images-Disc1" / f"GridSquare_{square}" / "Data"
            suffix = "_EER" if exposure.fmt == "eer" else "_fractions"
            movie = folder / f"{base}{suffix}{_EXT[exposure.fmt]}"
            metadata = folder / f"{base}.xml"
            b = epu_image_binning
            text = epu_xml_text(
                pixel_size_m=units.metre_from_angstrom(movie_spec.pixel_size_angstrom * b), readout=(nx // b, ny // b),
                binning=b, voltage_v=units.volt_from_kv(movie_spec.optics.voltage_kv),
                dose_e_per_m2=units.e_per_m2_from_e_per_a2(total),
                applied_defocus_m=-units.metre_from_angstrom(defocus_a),
                exposure_time_s=exposure_s, n_fractions=movie_spec.n_frames, acquired=when, magnification=105000,
                stage_xyz_m=stage)
        else:
            movie = directory / f"{spec.name}_{exposure.index + 1:05d}_{when:%b%d_%H.%M.%S}{_EXT[exposure.fmt]}"
            metadata = Path(f"{movie}.mdoc")
            text = serialem_mdoc_text(
                movie_name=movie.name, pixel_size_angstrom=movie_spec.pixel_size_angstrom, image_size=(nx, ny),
                voltage_kv=movie_spec.optics.voltage_kv, dose_e_per_a2=total, n_frames=movie_spec.n_frames,
                target_defocus_um=-defocus_a / 1e4, exposure_time_s=exposure_s, acquired=when,
                magnification=105000, stage_xyz_um=tuple(v * 1e6 for v in stage), gain_name=gain_path.name,
                session=spec.name)
        exposures.append(LayoutExposure(index=exposure.index, staged=staged_movie, movie=movie, metadata=metadata,
                                        metadata_text=text, truth=truth, acquired_at=acquired, style=style))
    return LayoutSession(style=style, directory=directory, staging=Path(staging), spec=spec, gain=gain_path,
                         gain_orientation=(rotate, flip), exposures=tuple(exposures))


def _metadata_write(exposure: LayoutExposure) -> None:
    exposure.metadata.parent.mkdir(parents=True, exist_ok=True)
    tmp = exposure.metadata.with_name(f".{exposure.metadata.name}.tmp")
    tmp.write_text(exposure.metadata_text)
    os.replace(tmp, exposure.metadata)


def exposure_place(exposure: LayoutExposure) -> None:
    """Put a complete exposure in place (movie by copy + rename; EPU writes its XML first, SerialEM after)."""
    if exposure.style == "epu":
        _metadata_write(exposure)
    exposure.movie.parent.mkdir(parents=True, exist_ok=True)
    tmp = exposure.movie.with_name(f".{exposure.movie.name}.part")
    shutil.copyfile(exposure.staged, tmp)
    os.replace(tmp, exposure.movie)
    if exposure.style != "epu":
        _metadata_write(exposure)


def exposure_place_slowly(exposure: LayoutExposure, *, chunks: int = 5, pause_s: float = 0.3) -> None:
    """Write the movie in place, ``chunks`` appends ``pause_s`` apart (a transfer in progress), then its metadata."""
    if exposure.style == "epu":
        _metadata_write(exposure)
    data = exposure.staged.read_bytes()
    exposure.movie.parent.mkdir(parents=True, exist_ok=True)
    step = -(-len(data) // chunks)
    with open(exposure.movie, "wb") as fh:
        for start in range(0, len(data), step):
            fh.write(data[start:start + step])
            fh.flush()
            if start + step < len(data):
                time.sleep(pause_s)
    if exposure.style != "epu":
        _metadata_write(exposure)


def exposure_place_truncated(exposure: LayoutExposure, *, fraction: float = 0.6) -> None:
    """A transfer that stops part way and never finishes (with its metadata, as the program wrote it)."""
    data = exposure.staged.read_bytes()
    exposure.movie.parent.mkdir(parents=True, exist_ok=True)
    exposure.movie.write_bytes(data[: int(len(data) * fraction)])
    _metadata_write(exposure)


def layout_write(spec: SessionSpec, *, style: str, directory: Path, staging: Path, **kwargs) -> LayoutSession:
    """Prepare a layout and place every exposure at once."""
    layout = layout_prepare(spec, style=style, directory=directory, staging=staging, **kwargs)
    for exposure in layout.exposures:
        exposure_place(exposure)
    return layout
