"""Leginon tables (database alias ``leginon``), with classic names and SI units.

Units (appion-compat §1.4): lengths in metres (defocus negative = underfocus),
dose in electrons per m², pixel sizes in metres, ``high tension`` in volts, Cs
in metres, stage angles in radians, times in milliseconds, ``system time`` in
epoch seconds. Conversions live in :mod:`semc.base.units`.
"""

from __future__ import annotations

from django.db import models

from semc.models.fields import (
    ClassicModel,
    double,
    flag,
    integer,
    mrc,
    ref,
    seq,
    subd,
    text,
)

__all__ = [
    "UserData",
    "InstrumentData",
    "SessionData",
    "PresetData",
    "ScopeEMData",
    "CameraEMData",
    "CorrectorPlanData",
    "NormImageData",
    "DarkImageData",
    "BrightImageData",
    "AcquisitionImageData",
    "PixelSizeCalibrationData",
    "ViewerImageStatus",
    "ObjIceThicknessData",
    "ZeroLossIceThicknessData",
]


class UserData(ClassicModel):
    username = text()
    firstname = text()
    lastname = text()
    email = text()

    class Meta(ClassicModel.Meta):
        db_table = "UserData"
        verbose_name = "user (Leginon)"

    def __str__(self) -> str:
        return self.username or f"user {self.pk}"


class InstrumentData(ClassicModel):
    """A microscope (TEM) or camera; ``cs`` is in metres."""

    name = text()
    hostname = text()
    description = text()
    cs = double()
    pixelmax = integer()
    hidden = flag()

    class Meta(ClassicModel.Meta):
        db_table = "InstrumentData"
        verbose_name = "instrument"

    def __str__(self) -> str:
        return f"{self.name} @ {self.hostname}" if self.hostname else (self.name or f"instrument {self.pk}")


class SessionData(ClassicModel):
    name = text()
    user = ref("UserData", "UserData", "user")
    image_path = text("image path")
    frame_path = text("frame path")
    comment = text()
    hidden = flag()
    holder = integer("REF|GridHolderData|holder")

    class Meta(ClassicModel.Meta):
        db_table = "SessionData"
        verbose_name = "session"

    def __str__(self) -> str:
        return self.name or f"session {self.pk}"


class PresetData(ClassicModel):
    """An acquisition preset; ``dose`` in e/m², ``defocus`` in m, times in ms."""

    session = ref("SessionData", "SessionData", "session", related_name="presets")
    number = integer()
    name = text()
    skip = flag()
    removed = flag()
    hasref = flag()
    tem = ref("InstrumentData", "InstrumentData", "tem")
    projection_mode = text("projection mode")
    magnification = integer()
    spot_size = integer("spot size")
    intensity = double()
    image_shift_x = subd("image shift", "x")
    image_shift_y = subd("image shift", "y")
    beam_shift_x = subd("beam shift", "x")
    beam_shift_y = subd("beam shift", "y")
    diffraction_shift_x = subd("diffraction shift", "x")
    diffraction_shift_y = subd("diffraction shift", "y")
    defocus = double()
    defocus_range_min = double("defocus range min")
    defocus_range_max = double("defocus range max")
    dose = double()
    tem_energy_filter = flag("tem energy filter")
    tem_energy_filter_width = double("tem energy filter width")
    probe_mode = text("probe mode")
    ccdcamera = ref("InstrumentData", "InstrumentData", "ccdcamera")
    exposure_time = double("exposure time")
    dimension_x = subd("dimension", "x", kind="int")
    dimension_y = subd("dimension", "y", kind="int")
    binning_x = subd("binning", "x", kind="int")
    binning_y = subd("binning", "y", kind="int")
    offset_x = subd("offset", "x", kind="int")
    offset_y = subd("offset", "y", kind="int")
    energy_filter = flag("energy filter")
    energy_filter_width = double("energy filter width")
    energy_filter_offset = double("energy filter offset")
    pre_exposure = double("pre exposure")
    alt_channel = flag("alt channel")
    save_frames = flag("save frames")
    frame_time = double("frame time")
    request_nframes = integer("request nframes")
    align_frames = flag("align frames")
    align_filter = text("align filter")
    use_frames = seq("use frames")
    readout_delay = integer("readout delay")
    fast_save = flag("fast save")
    use_cds = flag("use cds")

    class Meta(ClassicModel.Meta):
        db_table = "PresetData"
        verbose_name = "preset"

    def __str__(self) -> str:
        return self.name or f"preset {self.pk}"


class ScopeEMData(ClassicModel):
    """Microscope state at exposure: ``high tension`` in V, ``defocus`` in m, stage ``a`` in rad."""

    session = ref("SessionData", "SessionData", "session")
    tem = ref("InstrumentData", "InstrumentData", "tem")
    system_time = double("system time")
    magnification = integer()
    high_tension = integer("high tension")
    defocus = double()
    focus = double()
    reset_defocus = integer("reset defocus")
    spot_size = integer("spot size")
    intensity = double()
    projection_mode = text("projection mode")
    probe_mode = text("probe mode")
    image_shift_x = subd("image shift", "x")
    image_shift_y = subd("image shift", "y")
    beam_shift_x = subd("beam shift", "x")
    beam_shift_y = subd("beam shift", "y")
    beam_tilt_x = subd("beam tilt", "x")
    beam_tilt_y = subd("beam tilt", "y")
    stage_a = subd("stage position", "a")
    stage_b = subd("stage position", "b")
    stage_x = subd("stage position", "x")
    stage_y = subd("stage position", "y")
    stage_z = subd("stage position", "z")
    screen_current = double("screen current")
    beam_blank = text("beam blank")
    low_dose = text("low dose")
    low_dose_mode = text("low dose mode")
    tem_energy_filtered = flag("tem energy filtered")
    tem_energy_filter_width = double("tem energy filter width")

    class Meta(ClassicModel.Meta):
        db_table = "ScopeEMData"
        verbose_name = "scope state"
        verbose_name_plural = "scope states"


class CameraEMData(ClassicModel):
    """Camera state at exposure: sizes in pixels at this binning, pixel size in m, times in ms."""

    session = ref("SessionData", "SessionData", "session")
    ccdcamera = ref("InstrumentData", "InstrumentData", "ccdcamera")
    system_time = double("system time")
    dimension_x = subd("dimension", "x", kind="int")
    dimension_y = subd("dimension", "y", kind="int")
    binning_x = subd("binning", "x", kind="int")
    binning_y = subd("binning", "y", kind="int")
    binned_multiplier = double("binned multiplier")
    offset_x = subd("offset", "x", kind="int")
    offset_y = subd("offset", "y", kind="int")
    exposure_time = double("exposure time")
    exposure_type = text("exposure type")
    exposure_timestamp = double("exposure timestamp")
    intensity_averaged = flag("intensity averaged")
    inserted = flag()
    dump = flag()
    pixel_size_x = subd("pixel size", "x")
    pixel_size_y = subd("pixel size", "y")
    energy_filtered = flag("energy filtered")
    energy_filter = flag("energy filter")
    energy_filter_width = double("energy filter width")
    nframes = integer()
    save_frames = flag("save frames")
    align_frames = flag("align frames")
    tiff_frames = flag("tiff frames")
    eer_frames = flag("eer frames")
    align_filter = text("align filter")
    frames_name = text("frames name")
    use_frames = seq("use frames")
    frame_time = double("frame time")
    frame_flip = flag("frame flip")
    frame_rotate = integer("frame rotate")
    temperature = double()
    temperature_status = text("temperature status")
    readout_delay = integer("readout delay")
    gain_index = integer("gain index")
    system_corrected = flag("system corrected")
    sum_gain_corrected = flag("sum gain corrected")
    frame_gain_corrected = flag("frame gain corrected")
    system_dark_subtracted = flag("system dark subtracted")
    use_cds = flag("use cds")
    fast_save = flag("fast save")
    request_nframes = integer("request nframes")

    class Meta(ClassicModel.Meta):
        db_table = "CameraEMData"
        verbose_name = "camera state"
        verbose_name_plural = "camera states"


class CorrectorPlanData(ClassicModel):
    """Bad rows, columns and pixels of a camera configuration (``SEQ|`` reprs)."""

    session = ref("SessionData", "SessionData", "session")
    camera = ref("CameraEMData", "CameraEMData", "camera")
    bad_rows = seq("bad_rows")
    bad_cols = seq("bad_cols")
    bad_pixels = seq("bad_pixels")
    clip_limits = seq("clip_limits")
    despike = flag()
    despike_size = integer("despike size")
    despike_threshold = double("despike threshold")

    class Meta(ClassicModel.Meta):
        db_table = "CorrectorPlanData"
        verbose_name = "corrector plan"


class _ReferenceImage(ClassicModel):
    """Columns shared by image tables: a file in the owning session's image path."""

    image = mrc()
    filename = text()
    session = ref("SessionData", "SessionData", "session")
    camera = ref("CameraEMData", "CameraEMData", "camera")
    scope = ref("ScopeEMData", "ScopeEMData", "scope")
    corrector_plan = ref("CorrectorPlanData", "CorrectorPlanData", "corrector plan")
    channel = integer()
    correction_channel = integer("correction channel")
    denoised = flag()
    use_frames = seq("use frames")

    class Meta(ClassicModel.Meta):
        abstract = True

    def __str__(self) -> str:
        return self.filename or f"{type(self).__name__} {self.pk}"


class NormImageData(_ReferenceImage):
    """Gain (norm) reference."""

    class Meta(_ReferenceImage.Meta):
        db_table = "NormImageData"
        verbose_name = "gain reference"


class DarkImageData(_ReferenceImage):
    """Dark reference (sum over the dark's ``nframes``)."""

    class Meta(_ReferenceImage.Meta):
        db_table = "DarkImageData"
        verbose_name = "dark reference"


class BrightImageData(_ReferenceImage):
    """Bright reference."""

    class Meta(_ReferenceImage.Meta):
        db_table = "BrightImageData"
        verbose_name = "bright reference"


class AcquisitionImageData(_ReferenceImage):
    """An exposure; its movie is ``<frame path>/<filename>.frames.<ext>``."""

    session = ref("SessionData", "SessionData", "session", related_name="images")
    preset = ref("PresetData", "PresetData", "preset")
    pixeltype = text()
    pixels = integer()
    label = text()
    image_list = integer("REF|ImageListData|list")
    queue = integer("REF|QueueData|queue")
    dark = ref("DarkImageData", "DarkImageData", "dark")
    bright = ref("BrightImageData", "BrightImageData", "bright")
    norm = ref("NormImageData", "NormImageData", "norm")
    target = integer("REF|AcquisitionImageTargetData|target")
    emtarget = integer("REF|EMTargetData|emtarget")
    grid = integer("REF|GridData|grid")
    spotmap = integer("REF|SpotWellMapData|spotmap")
    tilt_series = integer("REF|TiltSeriesData|tilt series")
    mover = integer("REF|MoverParamsData|mover")
    version = integer()
    tiltnumber = integer()

    class Meta(_ReferenceImage.Meta):
        db_table = "AcquisitionImageData"
        verbose_name = "exposure"


class PixelSizeCalibrationData(ClassicModel):
    """``pixelsize`` is metres per unbinned detector pixel at the specimen."""

    session = ref("SessionData", "SessionData", "session")
    tem = ref("InstrumentData", "InstrumentData", "tem")
    ccdcamera = ref("InstrumentData", "InstrumentData", "ccdcamera")
    projection_mode = text("projection mode")
    magnification = integer()
    high_tension = integer("high tension")
    pixelsize = double()
    comment = text()

    class Meta(ClassicModel.Meta):
        db_table = "PixelSizeCalibrationData"
        verbose_name = "pixel size calibration"


class ViewerImageStatus(ClassicModel):
    """The web viewer's hide/trash/exemplar status of an image (at most one row per image)."""

    class Status(models.TextChoices):
        HIDDEN = "hidden"
        VISIBLE = "visible"
        EXEMPLAR = "exemplar"
        TRASH = "trash"

    status = text(choices=Status.choices)
    image = ref("AcquisitionImageData", "AcquisitionImageData", "image")
    session = ref("SessionData", "SessionData", "session")

    class Meta(ClassicModel.Meta):
        db_table = "ViewerImageStatus"
        verbose_name = "viewer image status"
        verbose_name_plural = "viewer image statuses"


class ObjIceThicknessData(ClassicModel):
    image = ref("AcquisitionImageData", "AcquisitionImageData", "image")
    vacuum_intensity = double("vacuum intensity")
    mfp = double()
    intensity = double()
    thickness = double()

    class Meta(ClassicModel.Meta):
        db_table = "ObjIceThicknessData"
        verbose_name = "ice thickness (objective aperture)"


class ZeroLossIceThicknessData(ClassicModel):
    image = ref("AcquisitionImageData", "AcquisitionImageData", "image")
    slit_mean = double("slit mean")
    slit_sd = double("slit sd")
    no_slit_mean = double("no slit mean")
    no_slit_sd = double("no slit sd")
    thickness = double()

    class Meta(ClassicModel.Meta):
        db_table = "ZeroLossIceThicknessData"
        verbose_name = "ice thickness (zero loss)"
