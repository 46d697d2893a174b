"""Acquisition metadata of one movie: EPU's per-exposure XML and SerialEM's ``.mdoc``, parsed to one dataclass.

Both parsers are pure (a path or text in, an :class:`AcquisitionMetadata` out) and raise
:class:`~semc.base.errors.CorruptInput` naming the file when it does not parse or lacks a value
that every file of its kind has. Units follow the field names (Å, kV, e/Å², s, m, rad);
defocus is in metres with Leginon's sign (negative = underfocus), which is also the sign EPU's
``AppliedDefocus`` and SerialEM's ``TargetDefocus``/``Defocus`` use.

EPU (Thermo Fisher ``MicroscopeImage`` XML, the file beside ``FoilHole_*_fractions.tiff``):
pixel size from ``SpatialScale/pixelSize`` (m, of the integrated image whose size is the camera
``ReadoutArea``), voltage from ``gun/AccelerationVoltage`` (V), total dose from the custom key
``Dose`` (e/m²), defocus from ``AppliedDefocus`` (m; ``optics/Defocus`` otherwise), fractions from
``FractionationSettings/NumberOffractions``, time from ``acquisitionDateTime``; grid square and
foil hole ids come from the path (``GridSquare_<id>``, ``FoilHole_<id>_Data_...``).

SerialEM (``[FrameSet = 0]`` of a per-movie ``<movie>.mdoc``, or the section of a
session ``.mdoc`` whose ``SubFramePath`` names the movie): ``PixelSpacing`` (Å, of the saved
frames), ``Voltage`` (kV), ``ExposureDose`` (e/Å²; else the sum of ``FrameDosesAndNumber``,
else ``DoseRate`` × ``ExposureTime`` over the unbinned pixel area), ``TargetDefocus``/``Defocus``
(µm), ``NumSubFrames``, ``DateTime``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from pathlib import Path, PureWindowsPath

from semc.base import units
from semc.base.errors import CorruptInput

__all__ = [
    "AcquisitionMetadata",
    "MdocDocument",
    "camera_instrument_name",
    "epu_ids_from_path",
    "epu_xml_parse",
    "mdoc_metadata",
    "mdoc_parse",
    "mdoc_text_parse",
]

logger = logging.getLogger(__name__)

_STEP = "ingest"


@dataclass(frozen=True, slots=True)
class AcquisitionMetadata:
    """What an acquisition program recorded about one exposure (None: not recorded).

    ``pixel_size_angstrom`` is the pixel of the image the metadata describes, whose width is
    ``image_width_px`` when known (EPU: the integrated image; SerialEM: the saved frames);
    :func:`semc.ingest.register` rescales it to the movie by the ratio of widths.
    """

    source: str  # epu | serialem | header
    path: str
    pixel_size_angstrom: float | None = None
    image_width_px: int | None = None
    voltage_kv: float | None = None
    magnification: int | None = None
    total_dose_e_per_a2: float | None = None
    defocus_m: float | None = None
    exposure_time_s: float | None = None
    n_fractions: int | None = None
    acquired_at: float | None = None  # epoch seconds
    binning: float | None = None
    camera_name: str | None = None
    microscope_name: str | None = None
    microscope_host: str | None = None
    software: str | None = None
    stage_alpha_rad: float | None = None
    stage_beta_rad: float | None = None
    stage_xyz_m: tuple[float, float, float] | None = None
    image_shift_xy: tuple[float, float] | None = None
    beam_shift_xy: tuple[float, float] | None = None
    spot_size: int | None = None
    probe_mode: str | None = None
    energy_filter: bool | None = None
    energy_filter_width_ev: float | None = None
    grid_square: str | None = None
    foil_hole: str | None = None
    gain_reference: str | None = None
    rotation_and_flip: int | None = None
    extra: dict = field(default_factory=dict)


# --- EPU ---------------------------------------------------------------------------------------

_GRID_SQUARE = re.compile(r"GridSquare_(\d+)")
_FOIL_HOLE = re.compile(r"FoilHole_(\d+)_Data_(\d+)_(\d+)")


def epu_ids_from_path(path: str | os.PathLike[str]) -> tuple[str | None, str | None]:
    """``(grid square id, foil hole id)`` from an EPU path (``.../GridSquare_<id>/Data/FoilHole_<id>_Data_...``)."""
    text = os.fspath(path)
    squares = _GRID_SQUARE.findall(text)
    hole = _FOIL_HOLE.search(os.path.basename(text))
    return (squares[-1] if squares else None), (hole.group(1) if hole else None)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(node: ET.Element | None, *names: str) -> ET.Element | None:
    """Descend by local names (namespaces ignored)."""
    for name in names:
        if node is None:
            return None
        node = next((c for c in node if _local(c.tag) == name), None)
    return node


def _text(node: ET.Element | None, *names: str) -> str | None:
    found = _child(node, *names)
    if found is None or found.text is None or found.get("{http://www.w3.org/2001/XMLSchema-instance}nil"):
        return None
    return found.text.strip()


def _number(value: str | None, *, kind=float, what: str, path: str):
    if value is None or value == "":
        return None
    try:
        number = kind(value)
    except ValueError:
        raise CorruptInput(f"{what} is not a number: {value!r}", step=_STEP, path=path) from None
    if isinstance(number, float) and not math.isfinite(number):
        raise CorruptInput(f"{what} is not finite: {value!r}", step=_STEP, path=path)
    return number


def _custom_data(node: ET.Element | None) -> dict[str, str]:
    """EPU's ``KeyValueOfstringanyType`` pairs, values as text (nested values: their first leaf's text)."""
    out: dict[str, str] = {}
    if node is None:
        return out
    for pair in node:
        key, value = _text(pair, "Key"), _child(pair, "Value")
        if key is None or value is None:
            continue
        leaf = value if len(value) == 0 else next((e for e in value.iter() if len(e) == 0), value)
        if leaf.text is not None:
            out[key] = leaf.text.strip()
    return out


def _iso_epoch(value: str | None, *, path: str) -> float | None:
    if not value:
        return None
    text = value.strip()
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", text)
    if not match:
        raise CorruptInput(f"acquisition time {value!r} is not ISO 8601", step=_STEP, path=path)
    base, fraction, zone = match.groups()
    # EPU writes 7 fractional digits (.NET ticks); Python takes at most 6
    micro = round(float(fraction or "0") * 1e6)
    when = dt.datetime.fromisoformat(base).replace(microsecond=min(micro, 999_999))
    if zone == "Z":
        when = when.replace(tzinfo=dt.UTC)
    elif zone:
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        when = when.replace(tzinfo=dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes)))
    else:
        when = when.astimezone()  # no zone: the acquisition PC's local time, taken as ours
    return when.timestamp()


def _pair(node: ET.Element | None, a: str, b: str, *, path: str, what: str) -> tuple[float, float] | None:
    if node is None:
        return None
    x, y = _number(_text(node, a), what=what, path=path), _number(_text(node, b), what=what, path=path)
    return None if x is None or y is None else (x, y)


def epu_xml_parse(path: str | os.PathLike[str]) -> AcquisitionMetadata:
    """Parse EPU's per-exposure XML (``MicroscopeImage``).

    Raises
    ------
    InputMissing
        No file.
    CorruptInput
        Not XML, not a ``MicroscopeImage``, or no pixel size or voltage.
    """
    path = os.fspath(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        from semc.base.errors import InputMissing

        raise InputMissing("EPU metadata file not found", step=_STEP, path=path) from None
    except ET.ParseError as exc:
        raise CorruptInput(f"EPU metadata is not well-formed XML ({exc})", step=_STEP, path=path) from None
    if _local(root.tag) != "MicroscopeImage":
        raise CorruptInput(f"EPU metadata root is {_local(root.tag)!r}, not MicroscopeImage", step=_STEP, path=path)
    custom = _custom_data(_child(root, "CustomData"))
    micro = _child(root, "microscopeData")
    acquisition, optics = _child(micro, "acquisition"), _child(micro, "optics")
    camera = _child(acquisition, "camera")
    pixel_m = _number(_text(root, "SpatialScale", "pixelSize", "x", "numericValue"), what="pixel size", path=path)
    voltage_v = _number(_text(micro, "gun", "AccelerationVoltage"), what="acceleration voltage", path=path)
    if not pixel_m or pixel_m <= 0:
        raise CorruptInput("EPU metadata has no pixel size (SpatialScale/pixelSize)", step=_STEP, path=path)
    if not voltage_v or voltage_v <= 0:
        raise CorruptInput("EPU metadata has no acceleration voltage", step=_STEP, path=path)
    specific = _custom_data(_child(camera, "CameraSpecificInput"))
    fractions = _number(specific.get("FractionationSettings"), kind=int, what="number of fractions", path=path)
    dose = _number(custom.get("Dose"), what="dose", path=path)
    defocus = _number(custom.get("AppliedDefocus"), what="applied defocus", path=path)
    if defocus is None:
        defocus = _number(_text(optics, "Defocus"), what="defocus", path=path)
    position = _child(micro, "stage", "Position")
    xyz = tuple(_number(_text(position, k), what=f"stage {k}", path=path) for k in ("X", "Y", "Z"))
    binning = _number(_text(camera, "Binning", "x"), kind=int, what="binning", path=path)
    slit = _child(optics, "EnergyFilter")
    square, hole = epu_ids_from_path(path)
    software = _text(micro, "core", "ApplicationSoftware")
    version = _text(micro, "core", "ApplicationSoftwareVersion")
    return AcquisitionMetadata(
        source="epu", path=path, pixel_size_angstrom=units.angstrom_from_metre(pixel_m),
        image_width_px=_number(_text(camera, "ReadoutArea", "width"), kind=int, what="readout width", path=path),
        voltage_kv=units.kv_from_volt(voltage_v),
        magnification=_number(_text(optics, "TemMagnification", "NominalMagnification"), kind=int,
                              what="magnification", path=path),
        total_dose_e_per_a2=units.e_per_a2_from_e_per_m2(dose) if dose else None,
        defocus_m=defocus,
        exposure_time_s=_number(_text(camera, "ExposureTime"), what="exposure time", path=path),
        n_fractions=fractions,
        acquired_at=_iso_epoch(_text(acquisition, "acquisitionDateTime"), path=path),
        binning=binning,
        camera_name=custom.get("DetectorCommercialName") or _text(camera, "Name"),
        microscope_name=_text(micro, "instrument", "InstrumentModel"),
        microscope_host=_text(micro, "instrument", "ComputerName"),
        software=f"{software} {version}" if software and version else software,
        stage_alpha_rad=_number(_text(position, "A"), what="stage alpha", path=path),
        stage_beta_rad=_number(_text(position, "B"), what="stage beta", path=path),
        stage_xyz_m=None if None in xyz else xyz,  # type: ignore[arg-type]
        image_shift_xy=_pair(_child(optics, "ImageShift"), "_x", "_y", path=path, what="image shift"),
        beam_shift_xy=_pair(_child(optics, "BeamShift"), "_x", "_y", path=path, what="beam shift"),
        spot_size=_number(_text(optics, "SpotIndex"), kind=int, what="spot size", path=path),
        probe_mode=_text(optics, "ProbeMode"),
        energy_filter=(_text(slit, "EnergySelectionSlitInserted") == "true") if slit is not None else None,
        energy_filter_width_ev=_number(_text(slit, "EnergySelectionSlitWidth"), what="slit width", path=path),
        grid_square=square, foil_hole=hole,
        extra={k: custom[k] for k in ("DoseOnCamera", "DoseRate") if k in custom},
    )


# --- SerialEM ----------------------------------------------------------------------------------

_SECTION = re.compile(r"^\[\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*?)\s*\]$")


@dataclass(frozen=True, slots=True)
class MdocDocument:
    """An ``.mdoc``: global ``key = value`` lines, ``[T = ...]`` titles, and ``[Kind = index]`` sections."""

    path: str
    globals: dict[str, str]
    titles: tuple[str, ...]
    sections: tuple[tuple[str, str, dict[str, str]], ...]  # (kind, index, values)


def mdoc_text_parse(text: str, *, path: str = "<text>") -> MdocDocument:
    """Parse mdoc text. Keys are kept as written; a repeated key in one section keeps its last value.

    Raises
    ------
    CorruptInput
        A line that is neither blank, a section header nor ``key = value``.
    """
    glob: dict[str, str] = {}
    titles: list[str] = []
    sections: list[tuple[str, str, dict[str, str]]] = []
    current = glob
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        header = _SECTION.match(line)
        if header:
            kind, value = header.groups()
            if kind == "T":
                titles.append(value)
                continue
            current = {}
            sections.append((kind, value, current))
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise CorruptInput(f"mdoc line {number} is not 'key = value': {raw[:80]!r}", step=_STEP, path=path)
        if key.strip() == "T" and current is glob:
            titles.append(value.strip())
            continue
        current[key.strip()] = value.strip()
    return MdocDocument(path=path, globals=glob, titles=tuple(titles), sections=tuple(sections))


def mdoc_parse(path: str | os.PathLike[str]) -> MdocDocument:
    """Read and parse an ``.mdoc`` file (see :func:`mdoc_text_parse`)."""
    path = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        from semc.base.errors import InputMissing

        raise InputMissing("mdoc file not found", step=_STEP, path=path) from None
    return mdoc_text_parse(text, path=path)


def _floats(value: str | None, *, what: str, path: str) -> list[float]:
    if value is None or value == "":
        return []
    try:
        out = [float(v) for v in value.split()]
    except ValueError:
        raise CorruptInput(f"{what} is not numeric: {value!r}", step=_STEP, path=path) from None
    if not all(math.isfinite(v) for v in out):
        raise CorruptInput(f"{what} is not finite: {value!r}", step=_STEP, path=path)
    return out


def _one(values: dict[str, str], key: str, *, path: str) -> float | None:
    numbers = _floats(values.get(key), what=key, path=path)
    return numbers[0] if numbers else None


def _serialem_time(value: str | None, *, path: str) -> float | None:
    if not value:
        return None
    text = " ".join(value.split())
    for form in ("%d-%b-%Y %H:%M:%S", "%d-%b-%y %H:%M:%S"):
        try:
            return dt.datetime.strptime(text, form).astimezone().timestamp()
        except ValueError:
            continue
    raise CorruptInput(f"DateTime {value!r} is not SerialEM's dd-Mon-yy(yy) hh:mm:ss", step=_STEP, path=path)


def _serialem_dose(values: dict[str, str], *, path: str) -> float | None:
    dose = _one(values, "ExposureDose", path=path)
    if dose:
        return dose
    pairs = _floats(values.get("FrameDosesAndNumber"), what="FrameDosesAndNumber", path=path)
    summed = sum(d * n for d, n in zip(pairs[0::2], pairs[1::2]))
    if summed > 0:
        return summed
    rate, seconds = _one(values, "DoseRate", path=path), _one(values, "ExposureTime", path=path)
    spacing, binning = _one(values, "PixelSpacing", path=path), _one(values, "Binning", path=path) or 1.0
    if rate and seconds and spacing:  # DoseRate: electrons per unbinned camera pixel per second
        return rate * seconds / (spacing / binning) ** 2
    return None


def mdoc_metadata(document: MdocDocument, *, movie_name: str | None = None) -> AcquisitionMetadata:
    """The metadata of one movie: the ``FrameSet``/``ZValue`` section naming it in ``SubFramePath``
    (or, with one section or no ``movie_name``, the first), merged over the global keys.

    Raises
    ------
    CorruptInput
        No section for the movie, or no pixel spacing.
    """
    path = document.path
    candidates = [s for s in document.sections if s[0] in ("FrameSet", "ZValue")]
    chosen = None
    if movie_name is not None:
        for _kind, _index, values in candidates:
            sub = values.get("SubFramePath")
            if sub and PureWindowsPath(sub).name == movie_name:
                chosen = values
                break
    if chosen is None:
        if len(candidates) > 1 and movie_name is not None:
            raise CorruptInput(f"no section of the mdoc names {movie_name!r} in SubFramePath", step=_STEP,
                               path=path)
        chosen = candidates[0][2] if candidates else {}
    values = {**document.globals, **chosen}
    spacing = _one(values, "PixelSpacing", path=path)
    if not spacing or spacing <= 0:
        raise CorruptInput("mdoc has no PixelSpacing", step=_STEP, path=path)
    defocus_um = _one(values, "TargetDefocus", path=path)
    if defocus_um is None:
        defocus_um = _one(values, "Defocus", path=path)
    stage = _floats(values.get("StagePosition"), what="StagePosition", path=path)
    stage_z = _one(values, "StageZ", path=path)
    shift = _floats(values.get("ImageShift"), what="ImageShift", path=path)
    tilt = _one(values, "TiltAngle", path=path)
    size = _floats(values.get("ImageSize"), what="ImageSize", path=path)
    magnification = _one(values, "Magnification", path=path)
    frames = _one(values, "NumSubFrames", path=path)
    spot = _one(values, "SpotSize", path=path)
    rotation = _one(values, "RotationAndFlip", path=path)
    gain = values.get("GainReference")
    return AcquisitionMetadata(
        source="serialem", path=path, pixel_size_angstrom=spacing,
        image_width_px=int(size[0]) if size else None,
        voltage_kv=_one(values, "Voltage", path=path),
        magnification=int(magnification) if magnification else None,
        total_dose_e_per_a2=_serialem_dose(values, path=path),
        defocus_m=units.metre_from_micrometre(defocus_um) if defocus_um is not None else None,
        exposure_time_s=_one(values, "ExposureTime", path=path),
        n_fractions=int(frames) if frames else None,
        acquired_at=_serialem_time(values.get("DateTime"), path=path),
        binning=_one(values, "Binning", path=path),
        camera_name=values.get("CameraName") or (f"SerialEM camera {values['CameraIndex']}"
                                                 if "CameraIndex" in values else None),
        software=document.titles[0].split(":")[0] if document.titles else "SerialEM",
        stage_alpha_rad=units.radian_from_degree(tilt) if tilt is not None else None,
        stage_xyz_m=(units.metre_from_micrometre(stage[0]), units.metre_from_micrometre(stage[1]),
                     units.metre_from_micrometre(stage_z or 0.0)) if len(stage) >= 2 else None,
        image_shift_xy=(shift[0], shift[1]) if len(shift) >= 2 else None,
        spot_size=int(spot) if spot else None,
        gain_reference=PureWindowsPath(gain).name if gain else None,
        rotation_and_flip=int(rotation) if rotation is not None else None,
        extra={k: values[k] for k in ("NavigatorLabel", "SubFramePath", "MagIndex") if k in values},
    )


def metadata_with(meta: AcquisitionMetadata, **changes) -> AcquisitionMetadata:
    """A copy with some fields replaced (dataclasses.replace, named for callers)."""
    return replace(meta, **changes)


_CAMERA_NAMES = (("k3", "GatanK3"), ("k2", "GatanK2"), ("falcon 4i", "Falcon4i"), ("falcon 4", "Falcon4EC"),
                 ("falcon4", "Falcon4EC"), ("falcon 3", "Falcon3"), ("falcon", "Falcon"), ("de-", "DE"))


def camera_instrument_name(commercial: str | None, *, eer: bool = False) -> str:
    """Leginon's InstrumentData name for a camera (names drive behaviour: compat §1.4)."""
    text = (commercial or "").lower()
    for needle, name in _CAMERA_NAMES:
        if needle in text:
            return name
    if eer:
        return "Falcon4EC"
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "", commercial or "")
    return cleaned or "Camera"
