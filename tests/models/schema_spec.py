"""The classic schema as appion-compat §1.3–§1.6 specifies it: table -> column -> type.

Transcribed from the spec by hand (not generated from the models), so that the
contract test compares two independent descriptions. Types: INT, DOUBLE,
TINYINT, TEXT, VARCHAR(n), TIMESTAMP. Columns the spec names without a type
(ScopeEMData's "other columns") carry the type sinedon's encoding rule gives
their Python type (§1.3).
"""

DEF = {"DEF_id": "INT", "DEF_timestamp": "TIMESTAMP"}


def xy(name: str, kind: str) -> dict[str, str]:
    return {f"SUBD|{name}|x": kind, f"SUBD|{name}|y": kind}


LEGINON = {
    "UserData": {**DEF, "username": "TEXT", "firstname": "TEXT", "lastname": "TEXT", "email": "TEXT"},
    "InstrumentData": {**DEF, "name": "TEXT", "hostname": "TEXT", "description": "TEXT", "cs": "DOUBLE",
                       "pixelmax": "INT", "hidden": "TINYINT"},
    "SessionData": {**DEF, "name": "TEXT", "REF|UserData|user": "INT", "image path": "TEXT", "frame path": "TEXT",
                    "comment": "TEXT", "hidden": "TINYINT", "REF|GridHolderData|holder": "INT"},
    "PresetData": {
        **DEF, "REF|SessionData|session": "INT", "number": "INT", "name": "TEXT", "skip": "TINYINT",
        "removed": "TINYINT", "hasref": "TINYINT", "REF|InstrumentData|tem": "INT", "projection mode": "TEXT",
        "magnification": "INT", "spot size": "INT", "intensity": "DOUBLE", **xy("image shift", "DOUBLE"),
        **xy("beam shift", "DOUBLE"), **xy("diffraction shift", "DOUBLE"), "defocus": "DOUBLE",
        "defocus range min": "DOUBLE", "defocus range max": "DOUBLE", "dose": "DOUBLE",
        "tem energy filter": "TINYINT", "tem energy filter width": "DOUBLE", "probe mode": "TEXT",
        "REF|InstrumentData|ccdcamera": "INT", "exposure time": "DOUBLE", **xy("dimension", "INT"),
        **xy("binning", "INT"), **xy("offset", "INT"), "energy filter": "TINYINT", "energy filter width": "DOUBLE",
        "energy filter offset": "DOUBLE", "pre exposure": "DOUBLE", "alt channel": "TINYINT",
        "save frames": "TINYINT", "frame time": "DOUBLE", "request nframes": "INT", "align frames": "TINYINT",
        "align filter": "TEXT", "SEQ|use frames": "TEXT", "readout delay": "INT", "fast save": "TINYINT",
        "use cds": "TINYINT",
    },
    "AcquisitionImageData": {
        **DEF, "REF|SessionData|session": "INT", "MRC|image": "TEXT", "pixeltype": "TEXT", "pixels": "INT",
        "label": "TEXT", "filename": "TEXT", "REF|ImageListData|list": "INT", "REF|QueueData|queue": "INT",
        "REF|ScopeEMData|scope": "INT", "REF|CameraEMData|camera": "INT",
        "REF|CorrectorPlanData|corrector plan": "INT", "correction channel": "INT", "channel": "INT",
        "REF|DarkImageData|dark": "INT", "REF|BrightImageData|bright": "INT", "REF|NormImageData|norm": "INT",
        "REF|PresetData|preset": "INT", "REF|AcquisitionImageTargetData|target": "INT",
        "REF|EMTargetData|emtarget": "INT", "REF|GridData|grid": "INT", "REF|SpotWellMapData|spotmap": "INT",
        "REF|TiltSeriesData|tilt series": "INT", "REF|MoverParamsData|mover": "INT", "version": "INT",
        "tiltnumber": "INT", "SEQ|use frames": "TEXT", "denoised": "TINYINT",
    },
    "CameraEMData": {
        **DEF, "REF|SessionData|session": "INT", "system time": "DOUBLE", **xy("dimension", "INT"),
        **xy("binning", "INT"), "binned multiplier": "DOUBLE", **xy("offset", "INT"), "exposure time": "DOUBLE",
        "exposure type": "TEXT", "exposure timestamp": "DOUBLE", "intensity averaged": "TINYINT",
        "inserted": "TINYINT", "dump": "TINYINT", **xy("pixel size", "DOUBLE"), "energy filtered": "TINYINT",
        "energy filter": "TINYINT", "energy filter width": "DOUBLE", "nframes": "INT", "save frames": "TINYINT",
        "align frames": "TINYINT", "tiff frames": "TINYINT", "eer frames": "TINYINT", "align filter": "TEXT",
        "frames name": "TEXT", "SEQ|use frames": "TEXT", "frame time": "DOUBLE", "frame flip": "TINYINT",
        "frame rotate": "INT", "temperature": "DOUBLE", "temperature status": "TEXT", "readout delay": "INT",
        "gain index": "INT", "system corrected": "TINYINT", "sum gain corrected": "TINYINT",
        "frame gain corrected": "TINYINT", "system dark subtracted": "TINYINT", "use cds": "TINYINT",
        "fast save": "TINYINT", "REF|InstrumentData|ccdcamera": "INT", "request nframes": "INT",
    },
    "ScopeEMData": {
        **DEF, "REF|SessionData|session": "INT", "magnification": "INT", "high tension": "INT",
        "REF|InstrumentData|tem": "INT", "defocus": "DOUBLE", "SUBD|stage position|a": "DOUBLE",
        "SUBD|stage position|b": "DOUBLE", "SUBD|stage position|x": "DOUBLE", "SUBD|stage position|y": "DOUBLE",
        "SUBD|stage position|z": "DOUBLE",
        # "other columns" of the spec (types from the §1.3 encoding rule)
        "system time": "DOUBLE", "focus": "DOUBLE", "reset defocus": "INT", "spot size": "INT",
        "intensity": "DOUBLE", "projection mode": "TEXT", "probe mode": "TEXT", **xy("image shift", "DOUBLE"),
        **xy("beam shift", "DOUBLE"), **xy("beam tilt", "DOUBLE"), "screen current": "DOUBLE",
        "beam blank": "TEXT", "low dose": "TEXT", "low dose mode": "TEXT", "tem energy filtered": "TINYINT",
        "tem energy filter width": "DOUBLE",
    },
    "PixelSizeCalibrationData": {
        **DEF, "REF|SessionData|session": "INT", "REF|InstrumentData|tem": "INT",
        "REF|InstrumentData|ccdcamera": "INT", "projection mode": "TEXT", "magnification": "INT",
        "high tension": "INT", "pixelsize": "DOUBLE", "comment": "TEXT",
    },
    "CorrectorPlanData": {
        **DEF, "REF|SessionData|session": "INT", "REF|CameraEMData|camera": "INT", "SEQ|bad_rows": "TEXT",
        "SEQ|bad_cols": "TEXT", "SEQ|bad_pixels": "TEXT", "SEQ|clip_limits": "TEXT", "despike": "TINYINT",
        "despike size": "INT", "despike threshold": "DOUBLE",
    },
    "ViewerImageStatus": {**DEF, "status": "TEXT", "REF|AcquisitionImageData|image": "INT",
                          "REF|SessionData|session": "INT"},
    "ObjIceThicknessData": {**DEF, "REF|AcquisitionImageData|image": "INT", "vacuum intensity": "DOUBLE",
                            "mfp": "DOUBLE", "intensity": "DOUBLE", "thickness": "DOUBLE"},
    "ZeroLossIceThicknessData": {**DEF, "REF|AcquisitionImageData|image": "INT", "slit mean": "DOUBLE",
                                 "slit sd": "DOUBLE", "no slit mean": "DOUBLE", "no slit sd": "DOUBLE",
                                 "thickness": "DOUBLE"},
}

_REFERENCE_IMAGE = {
    **DEF, "MRC|image": "TEXT", "filename": "TEXT", "REF|SessionData|session": "INT",
    "REF|CameraEMData|camera": "INT", "REF|ScopeEMData|scope": "INT", "REF|CorrectorPlanData|corrector plan": "INT",
    "channel": "INT", "correction channel": "INT", "denoised": "TINYINT", "SEQ|use frames": "TEXT",
}
LEGINON.update({"NormImageData": _REFERENCE_IMAGE, "DarkImageData": _REFERENCE_IMAGE,
                "BrightImageData": _REFERENCE_IMAGE})

PROJECTS = {
    "projects": {**DEF, "name": "VARCHAR(255)", "short_description": "TEXT", "long_description": "TEXT",
                 "category": "TEXT", "funding": "TEXT", "leginondb": "VARCHAR(50)", "hidden": "TINYINT"},
    "processingdb": {**DEF, "REF|projects|project": "INT", "appiondb": "VARCHAR(50)"},
    "projectexperiments": {**DEF, "REF|projects|project": "INT", "REF|leginondata|SessionData|session": "INT"},
    "projectowners": {**DEF, "REF|projects|project": "INT", "REF|leginondata|UserData|user": "INT"},
    "shareexperiments": {**DEF, "REF|leginondata|UserData|user": "INT", "REF|leginondata|SessionData|session": "INT"},
    "userdetails": {**DEF, "REF|leginondata|UserData|user": "INT", "title": "TEXT", "institution": "TEXT",
                    "dept": "TEXT", "address": "TEXT", "city": "TEXT", "statecountry": "TEXT", "zip": "TEXT",
                    "phone": "TEXT", "fax": "TEXT", "url": "TEXT"},
    "autohosts": {**DEF, "hostname": "TEXT", "appion_wrapper": "TEXT", "SEQ|ddalign_gpus": "TEXT", "loop_max": "INT"},
}

APPION = {
    "ApPathData": {**DEF, "path": "TEXT"},
    "ApAppionJobData": {**DEF, "REF|ApPathData|path": "INT", "name": "TEXT", "jobtype": "TEXT",
                        "REF|ApPathData|dmfpath": "INT", "REF|ApPathData|clusterpath": "INT",
                        "REF|leginondata|SessionData|session": "INT", "cluster": "TEXT", "clusterjobid": "INT",
                        "status": "VARCHAR(1)", "user": "TEXT"},
    "ScriptProgramName": {**DEF, "name": "TEXT"},
    "ScriptUserName": {**DEF, "name": "TEXT", "uid": "INT", "gid": "INT", "fullname": "TEXT"},
    "ScriptHostName": {**DEF, "name": "TEXT", "ip": "TEXT", "system": "TEXT", "distro": "TEXT", "arch": "TEXT",
                       "nproc": "INT", "memory": "INT", "cpu_vendor": "TEXT", "gpu_vendor": "TEXT"},
    "ScriptProgramRun": {**DEF, "runname": "TEXT", "revision": "TEXT", "REF|ScriptProgramName|progname": "INT",
                         "REF|ScriptUserName|username": "INT", "REF|ScriptHostName|hostname": "INT",
                         "REF|ApPathData|rundir": "INT", "REF|ApAppionJobData|job": "INT",
                         "REF|ApPathData|appion_path": "INT", "unixshell": "TEXT"},
    "ScriptParamName": {**DEF, "name": "TEXT", "REF|ScriptProgramName|progname": "INT"},
    "ScriptParamValue": {**DEF, "value": "TEXT", "usage": "TEXT", "REF|ScriptParamName|paramname": "INT",
                         "REF|ScriptProgramRun|progrun": "INT"},
    "ApDDStackParamsData": {**DEF, "preset": "TEXT", "align": "TINYINT", "bin": "INT",
                            "REF|ApDDStackRunData|unaligned_ddstackrun": "INT", "REF|ApStackData|stack": "INT",
                            "method": "TEXT", "REF|ApDEAlignerParamsData|de_aligner": "INT"},
    "ApDDStackRunData": {**DEF, "runname": "TEXT", "REF|ApDDStackParamsData|params": "INT",
                         "REF|leginondata|SessionData|session": "INT", "REF|ApPathData|path": "INT"},
    "ApDDAlignImagePairData": {**DEF, "REF|leginondata|AcquisitionImageData|source": "INT",
                               "REF|leginondata|AcquisitionImageData|result": "INT",
                               "REF|ApDDStackRunData|ddstackrun": "INT"},
    "ApDDFrameTrajectoryData": {**DEF, "REF|leginondata|AcquisitionImageData|image": "INT",
                                "REF|ApStackParticleData|particle": "INT", "REF|ApDDStackRunData|ddstackrun": "INT",
                                "SEQ|pos_x": "TEXT", "SEQ|pos_y": "TEXT", "last_x": "DOUBLE", "last_y": "DOUBLE",
                                "number_of_positions": "INT", "reference_index": "INT"},
    "ApDDAlignStatsData": {**DEF, "REF|leginondata|AcquisitionImageData|image": "INT",
                           "REF|ApDDStackRunData|ddstackrun": "INT", "REF|ApDDFrameTrajectoryData|trajectory": "INT",
                           "apix": "DOUBLE", "top_shift1_value": "DOUBLE", "top_shift2_value": "DOUBLE",
                           "top_shift3_value": "DOUBLE", "top_shift1_index": "INT", "top_shift2_index": "INT",
                           "top_shift3_index": "INT", "median_shift_value": "DOUBLE"},
    "ApAceRunData": {**DEF, "REF|ApAceParamsData|aceparams": "INT", "REF|ApCtfTiltParamsData|ctftilt_params": "INT",
                     "REF|ApAce2ParamsData|ace2_params": "INT", "REF|leginondata|SessionData|session": "INT",
                     "REF|ApPathData|path": "INT", "name": "TEXT", "hidden": "TINYINT",
                     "REF|ApXmippCtfParamsData|xmipp_ctf_params": "INT",
                     "REF|ApCtfFind4ParamsData|ctffind4_params": "INT", "transferred": "TINYINT",
                     "REF|ApAceTransferParamsData|transfer_params": "INT"},
    "ApCtfFind4ParamsData": {**DEF, "bestdb": "TINYINT", "ampcontrast": "DOUBLE", "fieldsize": "INT", "cs": "DOUBLE",
                             "resmin": "DOUBLE", "defstep": "DOUBLE", "shift_phase": "TINYINT",
                             "min_phase_shift": "DOUBLE", "max_phase_shift": "DOUBLE",
                             "phase_search_step": "DOUBLE", "local_refine": "TINYINT"},
    "ApCtfTiltParamsData": {**DEF, "medium": "TEXT", "ampcarbon": "DOUBLE", "ampice": "DOUBLE", "fieldsize": "INT",
                            "cs": "DOUBLE", "bin": "INT", "resmin": "DOUBLE", "resmax": "DOUBLE", "defstep": "DOUBLE",
                            "dast": "DOUBLE"},
    "ApCtfData": {
        **DEF, "REF|ApAceRunData|acerun": "INT", "REF|leginondata|AcquisitionImageData|image": "INT",
        "defocus1": "DOUBLE", "defocus2": "DOUBLE", "angle_astigmatism": "DOUBLE", "defocusinit": "DOUBLE",
        "amplitude_contrast": "DOUBLE", "cs": "DOUBLE", "extra_phase_shift": "DOUBLE",
        "cross_correlation": "DOUBLE", "ctffind4_resolution": "DOUBLE", "confidence": "DOUBLE",
        "confidence_d": "DOUBLE", "confidence_30_10": "DOUBLE", "confidence_5_peak": "DOUBLE",
        "overfocus_conf_30_10": "DOUBLE", "overfocus_conf_5_peak": "DOUBLE", "resolution_80_percent": "DOUBLE",
        "resolution_50_percent": "DOUBLE", "graph1": "TEXT", "graph2": "TEXT", "graph3": "TEXT", "graph4": "TEXT",
        "localplot": "TEXT", "localCTFstarfile": "TEXT", "ctfvalues_file": "TEXT", "mat_file": "TEXT",
        "tilt_angle": "DOUBLE", "tilt_axis_angle": "DOUBLE",
    },
    "ApAssessmentRunData": {**DEF, "REF|leginondata|SessionData|session": "INT", "name": "TEXT"},
    "ApAssessmentData": {**DEF, "REF|ApAssessmentRunData|assessmentrun": "INT",
                         "REF|leginondata|AcquisitionImageData|image": "INT", "selectionkeep": "INT"},
}

ALL = {"leginon": LEGINON, "projects": PROJECTS, "appion": APPION}
