"""The one Dask task of the daemon: run an exposure's steps in order, on one worker.

Motion correction then CTF estimation on the fresh aligned sum, in memory (no second
read). Each step's failure is captured as a picklable :class:`ProcessingError` so that
the controller stores what succeeded and records what failed; a failed motion
correction skips the steps after it. No ORM, no Django: inputs are plain dataclasses.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from semc.base.errors import ProcessingError
from semc.base.exposure import ExposureInputs

__all__ = ["PipelineConfig", "PipelineOutcome", "exposure_pipeline", "STEPS"]

STEPS = ("motioncorrection", "ctfestimation")


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    steps: tuple[str, ...]
    motioncorrection: Any = None  # MotionCorrectionTaskConfig
    ctfestimation: Any = None  # CtfTaskConfig


@dataclass(frozen=True, slots=True)
class PipelineOutcome:
    exposure_id: int
    outcomes: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, ProcessingError] = field(default_factory=dict)


def _as_processing_error(exc: BaseException, step: str, exposure_id: int) -> ProcessingError:
    if isinstance(exc, ProcessingError):
        return exc.with_context(step=step, exposure_id=exposure_id)
    tail = "".join(traceback.format_exception(exc)[-6:])
    return ProcessingError(f"unexpected {type(exc).__name__}: {exc}\n{tail}", step=step, exposure_id=exposure_id)


def exposure_pipeline(inputs: ExposureInputs, config: PipelineConfig, attempt_key: str) -> PipelineOutcome:
    """Run the configured steps on one exposure; never raises for a processing failure."""
    outcome = PipelineOutcome(exposure_id=inputs.exposure_id)
    corrected = None
    for step in config.steps:
        try:
            if step == "motioncorrection":
                from semc.motioncorrection.task import motioncorrection_run

                result, corrected = motioncorrection_run(inputs, config.motioncorrection, attempt_key=attempt_key)
            elif step == "ctfestimation":
                from semc.ctfestimation.task import ctfestimation_run

                image = corrected.sums["sum"] if corrected is not None else None
                mc = outcome.outcomes.get("motioncorrection")
                result = ctfestimation_run(inputs, config.ctfestimation, image=image, motioncorrection=mc,
                                           attempt_key=attempt_key)
            else:
                raise ProcessingError(f"unknown step {step!r}")
            outcome.outcomes[step] = result
        except Exception as exc:  # noqa: BLE001 - the task reports every failure to the controller
            outcome.errors[step] = _as_processing_error(exc, step, inputs.exposure_id)
            break
    return outcome
