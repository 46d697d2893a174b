"""Appion tables (database alias ``appion``: the project's ``ap<projectid>`` database).

Units and conventions (appion-compat §1.5): ApCtfData defoci in metres,
positive = underfocus, abs(defocus1) <= abs(defocus2); angles in degrees;
``extra_phase_shift`` in radians; ``cs`` in mm; ApCtfFind4ParamsData ``defstep``
in µm and phase limits in degrees, as typed on the command line; trajectory
positions in pixels of the aligned image (motioncorr convention).
"""

from __future__ import annotations

from django.db import models

from semc.models.fields import ClassicModel, double, flag, integer, ref, seq, text, varchar, xref

__all__ = [
    "ApPathData",
    "ApAppionJobData",
    "ScriptProgramName",
    "ScriptUserName",
    "ScriptHostName",
    "ScriptProgramRun",
    "ScriptParamName",
    "ScriptParamValue",
    "ApDDStackParamsData",
    "ApDDStackRunData",
    "ApDDAlignImagePairData",
    "ApDDFrameTrajectoryData",
    "ApDDAlignStatsData",
    "ApCtfFind4ParamsData",
    "ApCtfTiltParamsData",
    "ApAceRunData",
    "ApCtfData",
    "ApAssessmentRunData",
    "ApAssessmentData",
]


class ApPathData(ClassicModel):
    """An absolute directory, stored without a trailing slash (duplicates exist in real databases)."""

    path = text()

    class Meta(ClassicModel.Meta):
        db_table = "ApPathData"
        verbose_name = "path"

    def __str__(self) -> str:
        return self.path or f"path {self.pk}"


class ApAppionJobData(ClassicModel):
    """A job as myamiweb tracks it; ``status`` Q/R/D/E/A/U; ``jobtype`` is never changed by SEMC."""

    class Status(models.TextChoices):
        QUEUED = "Q"
        RUNNING = "R"
        DONE = "D"
        ERROR = "E"
        ABORTED = "A"
        UNKNOWN = "U"

    path = ref("ApPathData", "ApPathData", "path")
    name = text()
    jobtype = text()
    dmfpath = ref("ApPathData", "ApPathData", "dmfpath")
    clusterpath = ref("ApPathData", "ApPathData", "clusterpath")
    session_id = xref("leginondata", "SessionData", "session")
    cluster = text()
    clusterjobid = integer()
    status = varchar(1, choices=Status.choices)
    user = text()

    class Meta(ClassicModel.Meta):
        db_table = "ApAppionJobData"
        verbose_name = "Appion job"

    def __str__(self) -> str:
        return self.name or f"job {self.pk}"


class ScriptProgramName(ClassicModel):
    name = text()

    class Meta(ClassicModel.Meta):
        db_table = "ScriptProgramName"


class ScriptUserName(ClassicModel):
    name = text()
    uid = integer()
    gid = integer()
    fullname = text()

    class Meta(ClassicModel.Meta):
        db_table = "ScriptUserName"


class ScriptHostName(ClassicModel):
    name = text()
    ip = text()
    system = text()
    distro = text()
    arch = text()
    nproc = integer()
    memory = integer()
    cpu_vendor = text()
    gpu_vendor = text()

    class Meta(ClassicModel.Meta):
        db_table = "ScriptHostName"


class ScriptProgramRun(ClassicModel):
    runname = text()
    revision = text()
    progname = ref("ScriptProgramName", "ScriptProgramName", "progname")
    username = ref("ScriptUserName", "ScriptUserName", "username")
    hostname = ref("ScriptHostName", "ScriptHostName", "hostname")
    rundir = ref("ApPathData", "ApPathData", "rundir")
    job = ref("ApAppionJobData", "ApAppionJobData", "job")
    appion_path = ref("ApPathData", "ApPathData", "appion_path")
    unixshell = text()

    class Meta(ClassicModel.Meta):
        db_table = "ScriptProgramRun"


class ScriptParamName(ClassicModel):
    name = text()
    progname = ref("ScriptProgramName", "ScriptProgramName", "progname")

    class Meta(ClassicModel.Meta):
        db_table = "ScriptParamName"


class ScriptParamValue(ClassicModel):
    value = text()
    usage = text()
    paramname = ref("ScriptParamName", "ScriptParamName", "paramname")
    progrun = ref("ScriptProgramRun", "ScriptProgramRun", "progrun")

    class Meta(ClassicModel.Meta):
        db_table = "ScriptParamValue"


class ApDDStackParamsData(ClassicModel):
    preset = text()
    align = flag()
    bin = integer()
    unaligned_ddstackrun = ref("ApDDStackRunData", "ApDDStackRunData", "unaligned_ddstackrun")
    stack = integer("REF|ApStackData|stack")
    method = text()
    de_aligner = integer("REF|ApDEAlignerParamsData|de_aligner")

    class Meta(ClassicModel.Meta):
        db_table = "ApDDStackParamsData"
        verbose_name = "DD stack parameters"
        verbose_name_plural = "DD stack parameters"


class ApDDStackRunData(ClassicModel):
    """A motion-correction run: (runname, params, session, path)."""

    runname = text()
    params = ref("ApDDStackParamsData", "ApDDStackParamsData", "params")
    session_id = xref("leginondata", "SessionData", "session")
    path = ref("ApPathData", "ApPathData", "path")

    class Meta(ClassicModel.Meta):
        db_table = "ApDDStackRunData"
        verbose_name = "motion-correction run"

    def __str__(self) -> str:
        return self.runname or f"ddstack run {self.pk}"


class ApDDAlignImagePairData(ClassicModel):
    """Raw movie image -> aligned image; the row that marks motion correction done."""

    source_id = xref("leginondata", "AcquisitionImageData", "source")
    result_id = xref("leginondata", "AcquisitionImageData", "result")
    ddstackrun = ref("ApDDStackRunData", "ApDDStackRunData", "ddstackrun", related_name="pairs")

    class Meta(ClassicModel.Meta):
        db_table = "ApDDAlignImagePairData"
        verbose_name = "aligned image pair"


class ApDDFrameTrajectoryData(ClassicModel):
    """Frame positions (pixels of the aligned image, motioncorr convention) of the aligned image."""

    image_id = xref("leginondata", "AcquisitionImageData", "image")
    particle = integer("REF|ApStackParticleData|particle")
    ddstackrun = ref("ApDDStackRunData", "ApDDStackRunData", "ddstackrun")
    pos_x = seq("pos_x")
    pos_y = seq("pos_y")
    last_x = double()
    last_y = double()
    number_of_positions = integer()
    reference_index = integer()

    class Meta(ClassicModel.Meta):
        db_table = "ApDDFrameTrajectoryData"
        verbose_name = "frame trajectory"


class ApDDAlignStatsData(ClassicModel):
    """Drift statistics of an aligned image (pixels; ``apix`` of the aligned image, Å)."""

    image_id = xref("leginondata", "AcquisitionImageData", "image")
    ddstackrun = ref("ApDDStackRunData", "ApDDStackRunData", "ddstackrun")
    trajectory = ref("ApDDFrameTrajectoryData", "ApDDFrameTrajectoryData", "trajectory")
    apix = double()
    top_shift1_value = double()
    top_shift2_value = double()
    top_shift3_value = double()
    top_shift1_index = integer()
    top_shift2_index = integer()
    top_shift3_index = integer()
    median_shift_value = double()

    class Meta(ClassicModel.Meta):
        db_table = "ApDDAlignStatsData"
        verbose_name = "drift statistics"
        verbose_name_plural = "drift statistics"


class ApCtfFind4ParamsData(ClassicModel):
    bestdb = flag()
    ampcontrast = double()
    fieldsize = integer()
    cs = double()
    resmin = double()
    defstep = double()
    shift_phase = flag()
    min_phase_shift = double()
    max_phase_shift = double()
    phase_search_step = double()
    local_refine = flag()

    class Meta(ClassicModel.Meta):
        db_table = "ApCtfFind4ParamsData"
        verbose_name = "CTFFIND4 parameters"
        verbose_name_plural = "CTFFIND4 parameters"


class ApCtfTiltParamsData(ClassicModel):
    medium = text()
    ampcarbon = double()
    ampice = double()
    fieldsize = integer()
    cs = double()
    bin = integer()
    resmin = double()
    resmax = double()
    defstep = double()
    dast = double()

    class Meta(ClassicModel.Meta):
        db_table = "ApCtfTiltParamsData"
        verbose_name = "CTFTILT parameters"
        verbose_name_plural = "CTFTILT parameters"


class ApAceRunData(ClassicModel):
    """A CTF run: identity (name, session)."""

    aceparams = integer("REF|ApAceParamsData|aceparams")
    ctftilt_params = ref("ApCtfTiltParamsData", "ApCtfTiltParamsData", "ctftilt_params")
    ace2_params = integer("REF|ApAce2ParamsData|ace2_params")
    session_id = xref("leginondata", "SessionData", "session")
    path = ref("ApPathData", "ApPathData", "path")
    name = text()
    hidden = flag(db_default=False)
    xmipp_ctf_params = integer("REF|ApXmippCtfParamsData|xmipp_ctf_params")
    ctffind4_params = ref("ApCtfFind4ParamsData", "ApCtfFind4ParamsData", "ctffind4_params")
    transferred = flag(db_default=False)
    transfer_params = integer("REF|ApAceTransferParamsData|transfer_params")

    class Meta(ClassicModel.Meta):
        db_table = "ApAceRunData"
        verbose_name = "CTF run"

    def __str__(self) -> str:
        return self.name or f"CTF run {self.pk}"


class ApCtfData(ClassicModel):
    """A CTF result of one image in one run (metres, degrees, radians, Å)."""

    acerun = ref("ApAceRunData", "ApAceRunData", "acerun", related_name="ctfs")
    image_id = xref("leginondata", "AcquisitionImageData", "image")
    defocus1 = double()
    defocus2 = double()
    angle_astigmatism = double()
    defocusinit = double()
    amplitude_contrast = double()
    cs = double()
    extra_phase_shift = double()
    cross_correlation = double()
    ctffind4_resolution = double()
    confidence = double()
    confidence_d = double()
    confidence_30_10 = double()
    confidence_5_peak = double()
    overfocus_conf_30_10 = double()
    overfocus_conf_5_peak = double()
    resolution_80_percent = double()
    resolution_50_percent = double()
    graph1 = text()
    graph2 = text()
    graph3 = text()
    graph4 = text()
    localplot = text()
    localCTFstarfile = text()
    ctfvalues_file = text()
    mat_file = text()
    tilt_angle = double()
    tilt_axis_angle = double()

    class Meta(ClassicModel.Meta):
        db_table = "ApCtfData"
        verbose_name = "CTF result"


class ApAssessmentRunData(ClassicModel):
    session_id = xref("leginondata", "SessionData", "session")
    name = text()

    class Meta(ClassicModel.Meta):
        db_table = "ApAssessmentRunData"
        verbose_name = "assessment run"


class ApAssessmentData(ClassicModel):
    """Keep (1) or reject (0) of an image; the newest row of an image wins."""

    assessmentrun = ref("ApAssessmentRunData", "ApAssessmentRunData", "assessmentrun")
    image_id = xref("leginondata", "AcquisitionImageData", "image")
    selectionkeep = integer()

    class Meta(ClassicModel.Meta):
        db_table = "ApAssessmentData"
        verbose_name = "assessment"
