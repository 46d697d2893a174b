"""Populated Leginon/Appion rows for tests: a small session as Leginon and Appion would write it.

Values follow the units of appion-compat §1.4 (metres, volts, e/m², ms) and
the K3 oracle of §7 (5760×4092 at camera binning 2 on an 11520×8184 sensor,
pixel size 4.13e-11 m -> 0.826 Å/px).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from semc import models as m
from semc.models.codecs import seq_encode


@dataclass
class PopulatedSession:
    session: m.SessionData
    preset: m.PresetData
    camera_instrument: m.InstrumentData
    tem: m.InstrumentData
    images: list[m.AcquisitionImageData] = field(default_factory=list)
    project: m.Project | None = None
    norm: m.NormImageData | None = None
    plan: m.CorrectorPlanData | None = None


def session_populate(*, name: str = "26nov23a", n_images: int = 3, image_path: str = "/data/leginon/26nov23a/rawdata",
                     frame_path: str = "/data/frames/26nov23a/rawdata") -> PopulatedSession:
    """Create a user, instruments, a session with one preset, references and ``n_images`` exposures."""
    user = m.UserData.objects.create(username="jdoe", firstname="Jane", lastname="Doe", email="jdoe@example.org")
    tem = m.InstrumentData.objects.create(name="TitanKrios", hostname="krios1", cs=2.7e-3)
    camera = m.InstrumentData.objects.create(name="GatanK3", hostname="k3pc", pixelmax=255)
    session = m.SessionData.objects.create(name=name, user=user, image_path=image_path, frame_path=frame_path,
                                           comment="test session", hidden=False)
    ref_session = m.SessionData.objects.create(name=f"{name}_ref", user=user, image_path=image_path,
                                               comment="reference images", hidden=True)
    preset = m.PresetData.objects.create(
        session=session, name="enn", number=3, tem=tem, ccdcamera=camera, magnification=105000,
        dose=5.4546e21, defocus=-1.5e-6, exposure_time=2000.0, frame_time=40.0,
        dimension_x=5760, dimension_y=4092, binning_x=2, binning_y=2, offset_x=0, offset_y=0, save_frames=True,
    )
    m.PixelSizeCalibrationData.objects.create(session=session, tem=tem, ccdcamera=camera, magnification=105000,
                                              high_tension=300000, pixelsize=4.13e-11)
    ref_camera = m.CameraEMData.objects.create(session=ref_session, ccdcamera=camera, dimension_x=5760,
                                               dimension_y=4092, binning_x=2, binning_y=2, nframes=1)
    plan = m.CorrectorPlanData.objects.create(session=ref_session, camera=ref_camera, bad_rows=seq_encode([]),
                                              bad_cols=seq_encode([1151, 1152]), bad_pixels=seq_encode([(10, 20)]))
    norm = m.NormImageData.objects.create(session=ref_session, camera=ref_camera, corrector_plan=plan,
                                          filename=f"{name}_norm_0", image=f"{name}_norm_0.mrc")
    populated = PopulatedSession(session=session, preset=preset, camera_instrument=camera, tem=tem, norm=norm,
                                 plan=plan)
    for index in range(n_images):
        populated.images.append(_exposure_create(populated, index))
    project = m.Project.objects.create(name="test project", short_description="for tests")
    m.ProcessingDB.objects.create(project=project, appiondb="ap1")
    m.ProjectExperiment.objects.create(project=project, session_id=session.pk)
    populated.project = project
    return populated


def _exposure_create(populated: PopulatedSession, index: int) -> m.AcquisitionImageData:
    session, preset = populated.session, populated.preset
    scope = m.ScopeEMData.objects.create(session=session, tem=populated.tem, magnification=105000,
                                         high_tension=300000, defocus=-1.5e-6 - index * 1e-7, stage_a=0.0)
    camera = m.CameraEMData.objects.create(
        session=session, ccdcamera=populated.camera_instrument, dimension_x=5760, dimension_y=4092,
        binning_x=2, binning_y=2, offset_x=0, offset_y=0, exposure_time=2000.0, frame_time=40.0, nframes=50,
        save_frames=True, tiff_frames=True, eer_frames=False, frame_flip=False, frame_rotate=0,
        pixel_size_x=5.0e-6, pixel_size_y=5.0e-6, use_frames=seq_encode(range(50)),
    )
    filename = f"{session.name}_{index:05d}enn"
    return m.AcquisitionImageData.objects.create(
        session=session, preset=preset, scope=scope, camera=camera, corrector_plan=populated.plan,
        norm=populated.norm, filename=filename, image=f"{filename}.mrc", label="Exposure",
        pixeltype="float32", pixels=5760 * 4092, use_frames=seq_encode(range(50)),
    )


def appion_results_populate(populated: PopulatedSession, *, rundir: str = "/data/appion/26nov23a/ddstack/ddstack1"):
    """Appion rows of one motion-correction run and one CTF run over the session's exposures."""
    path = m.ApPathData.objects.create(path=rundir)
    params = m.ApDDStackParamsData.objects.create(preset="enn", align=True, bin=1, method="builtin")
    run = m.ApDDStackRunData.objects.create(runname="ddstack1", params=params, session_id=populated.session.pk,
                                            path=path)
    ctf_params = m.ApCtfFind4ParamsData.objects.create(ampcontrast=0.07, fieldsize=512, cs=2.7, resmin=50.0,
                                                       defstep=0.1, shift_phase=False)
    ctf_path = m.ApPathData.objects.create(path=rundir.replace("ddstack/ddstack1", "ctf/ctffind4run1"))
    acerun = m.ApAceRunData.objects.create(name="ctffind4run1", session_id=populated.session.pk, path=ctf_path,
                                           ctffind4_params=ctf_params)
    job = m.ApAppionJobData.objects.create(path=path, name="ddstack1.appionsub.job", jobtype="makeddrawframestack",
                                           clusterpath=path, session_id=populated.session.pk, cluster="localhost",
                                           status="R", user="jdoe")
    for image in populated.images:
        m.ApDDAlignImagePairData.objects.create(source_id=image.pk, result_id=image.pk, ddstackrun=run)
        trajectory = m.ApDDFrameTrajectoryData.objects.create(
            image_id=image.pk, ddstackrun=run, pos_x=seq_encode([0.0, 0.5, 1.0], as_list=True),
            pos_y=seq_encode([0.0, -0.25, -0.5], as_list=True), last_x=1.0, last_y=-0.5,
            number_of_positions=3, reference_index=1)
        m.ApDDAlignStatsData.objects.create(image_id=image.pk, ddstackrun=run, trajectory=trajectory, apix=0.826,
                                            top_shift1_value=0.56, top_shift1_index=0, median_shift_value=0.56)
        m.ApCtfData.objects.create(acerun=acerun, image_id=image.pk, defocus1=1.45e-6, defocus2=1.55e-6,
                                   angle_astigmatism=30.0, amplitude_contrast=0.07, cs=2.7, extra_phase_shift=0.0,
                                   cross_correlation=0.12, ctffind4_resolution=3.9)
    return run, acerun, job


def other_tables_populate(populated: PopulatedSession, job: m.ApAppionJobData) -> None:
    """One row in each remaining classic table, so that every admin page has something to show."""
    session, image = populated.session, populated.images[0]
    m.DarkImageData.objects.create(session=session, filename="dark_0", image="dark_0.mrc")
    m.BrightImageData.objects.create(session=session, filename="bright_0", image="bright_0.mrc")
    m.ViewerImageStatus.objects.create(status="hidden", image=image, session=session)
    m.ObjIceThicknessData.objects.create(image=image, vacuum_intensity=1000.0, mfp=395.0, intensity=800.0,
                                         thickness=88.0)
    m.ZeroLossIceThicknessData.objects.create(image=image, slit_mean=80.0, slit_sd=3.0, no_slit_mean=100.0,
                                              no_slit_sd=4.0, thickness=90.0)
    user_id = session.user_id
    m.ProjectOwner.objects.create(project=populated.project, user_id=user_id)
    m.ShareExperiment.objects.create(user_id=user_id, session_id=session.pk)
    m.UserDetails.objects.create(user_id=user_id, institution="NYSBC", zip="10027")
    m.AutoHost.objects.create(hostname="gpu1", appion_wrapper="/opt/appion", ddalign_gpus=seq_encode([0, 1]),
                              loop_max=2)
    assessment_run = m.ApAssessmentRunData.objects.create(session_id=session.pk, name="run1")
    m.ApAssessmentData.objects.create(assessmentrun=assessment_run, image_id=image.pk, selectionkeep=0)
    m.ApCtfTiltParamsData.objects.create(medium="ice", fieldsize=512, cs=2.7, bin=1, resmin=50.0, resmax=5.0)
    program = m.ScriptProgramName.objects.create(name="makeDDAlignMotionCor2_UCSF")
    user = m.ScriptUserName.objects.create(name="jdoe", uid=1000, gid=1000, fullname="Jane Doe")
    host = m.ScriptHostName.objects.create(name="head1", ip="127.0.0.1", system="Linux", nproc=2, memory=24000000)
    progrun = m.ScriptProgramRun.objects.create(runname="ddstack1", revision="0.1.0", progname=program,
                                                username=user, hostname=host, rundir=job.path, job=job)
    param = m.ScriptParamName.objects.create(name="bin", progname=program)
    m.ScriptParamValue.objects.create(value="1.0", usage="--bin=1.0", paramname=param, progrun=progrun)


def chained_loop_params(*, session: str, rundir: str, **overrides):
    """`LoopParams` of a one-pass run with motion correction (global only) and CTF chained, at the
    settings the daemon tests use on simulated 1024² sessions (box 256, 30–5 Å, 0.5–4 µm)."""
    from semc.ctfestimation.task import ctf_task_config
    from semc.loop import LoopParams
    from semc.motioncorrection.task import MotionCorrectionTaskConfig
    from semc.motioncorrection.types import MotionCorrectionParams
    from semc.pipeline import PipelineConfig

    steps = ("motioncorrection", "ctfestimation")
    mc = MotionCorrectionTaskConfig(params=MotionCorrectionParams(patches_xy=(0, 0)), rundir=rundir)
    ctf = ctf_task_config(rundir=rundir, box=256, resmin=30.0, resmax=5.0, defocus_range=(5000.0, 40000.0))
    values = dict(session=session, preset="enn", steps=steps, rundir=rundir, runname=rundir.rstrip("/").split("/")[-1],
                  pipeline=PipelineConfig(steps=steps, motioncorrection=mc, ctfestimation=ctf), wait=False,
                  poll_interval_s=0.2)
    values.update(overrides)
    return LoopParams(**values)


def daemon_run(params, *, n_workers: int = 1):
    """Run a controller to the end on a fresh local cluster (prepare, loop, shutdown); returns it."""
    from semc.cluster import cluster_open
    from semc.loop import Controller

    with cluster_open("local", n_workers=n_workers) as cluster:
        controller = Controller(params, cluster)
        controller.prepare()
        try:
            controller.run_loop()
        finally:
            controller.shutdown(failed=False)
    return controller
