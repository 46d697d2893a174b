"""Read the demo's session back (controller side: Django set up): progress, stored results, ground truth.

Progress comes from the Leginon rows (what the microscope has written) and SEMC's ledger
(:func:`semc.base.ledger.run_metrics`); results from the classic rows the daemon stored
(``ApDDFrameTrajectoryData``, ``ApCtfData``) located through the ledger, and the ground truth from
``<frame path>/<filename>.truth.json`` written by the simulator beside each movie.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from semc import models as m
from semc.base import ledger
from semc.base.errors import CorruptInput, InputMissing
from semc.base.retrieve import path_component_check
from semc.base.store import path_normalise
from semc.demo.accuracy import ExposureRecord, finite_or_none
from semc.demo.display import Progress
from semc.models.codecs import seq_decode
from semc.models.databases import appion_alias_for_project, appion_use
from semc.models.semc import ExposureStep, ProcessingRun, StepState

__all__ = ["progress_snapshot", "raw_exposures", "records_collect", "run_find", "truth_read"]

_STEP = "demo"
_WORST_FIRST = (StepState.QUARANTINED, StepState.FAILED, StepState.DEFERRED, StepState.RUNNING, StepState.PENDING)


def run_find(rundir: str) -> ProcessingRun | None:
    """The run of a run directory, once the daemon has opened it."""
    return ProcessingRun.objects.filter(rundir=path_normalise(rundir)).first()


def raw_exposures(session_name: str, preset: str) -> list[m.AcquisitionImageData]:
    """The session's raw exposures (the preset's images), oldest first."""
    return list(m.AcquisitionImageData.objects.select_related("session")
                .filter(session__name=session_name, preset__name=preset).order_by("id"))


def progress_snapshot(*, session_name: str, preset: str, rundir: str, planned: int, elapsed_s: float,
                      phase: str) -> Progress:
    """Where the run stands: arrivals from the Leginon rows, the rest from the ledger's last step."""
    arrived = m.AcquisitionImageData.objects.filter(session__name=session_name, preset__name=preset).count()
    run = run_find(rundir)
    if run is None:
        return Progress(planned=planned, arrived=arrived, stored=0, failed=0, backlog=arrived,
                        throughput_per_min=None, latency_p50_s=None, latency_p95_s=None, elapsed_s=elapsed_s,
                        phase=phase)
    failed = (ExposureStep.objects.filter(run=run, state__in=[StepState.FAILED, StepState.QUARANTINED])
              .values("exposure_id").distinct().count())
    metrics = ledger.run_metrics(run, run.steps[-1])
    return Progress(planned=planned, arrived=arrived, stored=metrics.counts[StepState.DONE], failed=failed,
                    backlog=max(metrics.backlog, arrived - sum(metrics.counts.values())) if arrived else 0,
                    throughput_per_min=metrics.throughput_per_min if metrics.counts[StepState.DONE] > 1 else None,
                    latency_p50_s=metrics.latency_p50_s,
                    latency_p95_s=metrics.latency_p95_s, elapsed_s=elapsed_s, phase=phase)


def run_settled(run: ProcessingRun | None, planned: int) -> bool:
    """Whether every planned exposure is done or quarantined in every step of the run."""
    if run is None:
        return False
    settled = ExposureStep.objects.filter(run=run, state__in=[StepState.DONE, StepState.QUARANTINED]).count()
    return settled >= planned * len(run.steps)


def truth_read(frame_path: str, filename: str, *, exposure_id: int) -> dict:
    """The simulator's ground truth of one exposure (``<frame path>/<filename>.truth.json``).

    Raises
    ------
    InputMissing
        If the file is not there (the session was not simulated, or its files were removed).
    CorruptInput
        If it is not the simulator's JSON.
    """
    name = path_component_check(f"{filename}.truth.json", what="truth file name", exposure_id=exposure_id)
    path = Path(frame_path) / name
    try:
        data = json.loads(path.read_text())
        return {"shifts": tuple(zip(data["trajectory"]["shift_x_px"], data["trajectory"]["shift_y_px"])),
                "defocus": (float(data["ctf"]["defocus1_angstrom"]), float(data["ctf"]["defocus2_angstrom"]))}
    except FileNotFoundError:
        raise InputMissing("no ground truth beside the movie", step=_STEP, exposure_id=exposure_id,
                           path=str(path)) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptInput(f"not a simulation truth file ({exc})", step=_STEP, exposure_id=exposure_id,
                           path=str(path)) from None


def _epoch(moment: dt.datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _state(lines: list[ExposureStep], steps: list[str]) -> str:
    if len(lines) == len(steps) and all(line.state == StepState.DONE for line in lines):
        return StepState.DONE
    states = {line.state for line in lines}
    return next((s for s in _WORST_FIRST if s in states), StepState.PENDING)


def _worker_s(lines: list[ExposureStep]) -> float | None:
    durations = [line.durations for line in lines if line.state == StepState.DONE and line.durations]
    if not durations:
        return None
    return sum(float(d.get("total", sum(v for v in d.values() if isinstance(v, (int, float))))) for d in durations)


def _stored_shifts(lines: dict[str, ExposureStep]) -> tuple[tuple[float, float], ...] | None:
    line = lines.get("motioncorrection")
    if line is None or line.state != StepState.DONE or "aligned_id" not in line.result:
        return None
    row = m.ApDDFrameTrajectoryData.objects.filter(image_id=line.result["aligned_id"]).order_by("-id").first()
    if row is None:
        return None
    xs = seq_decode(row.pos_x, item_type=float, column="SEQ|pos_x")
    ys = seq_decode(row.pos_y, item_type=float, column="SEQ|pos_y")
    return tuple(zip(xs, ys))


def _stored_ctf(lines: dict[str, ExposureStep]) -> m.ApCtfData | None:
    line = lines.get("ctfestimation")
    if line is None or line.state != StepState.DONE or "ctf_id" not in line.result:
        return None
    return m.ApCtfData.objects.filter(pk=line.result["ctf_id"]).first()


def records_collect(*, session_name: str, preset: str, rundir: str) -> list[ExposureRecord]:
    """Every raw exposure of the session with its ground truth, stored results and ledger times."""
    run = run_find(rundir)
    steps = list(run.steps) if run else []
    by_exposure: dict[int, dict[str, ExposureStep]] = {}
    if run is not None:
        for line in ExposureStep.objects.filter(run=run):
            by_exposure.setdefault(line.exposure_id, {})[line.step] = line
    alias = appion_alias_for_project(run.project_id) if run and run.project_id else None
    records = []
    for image in raw_exposures(session_name, preset):
        truth = truth_read(image.session.frame_path, image.filename, exposure_id=image.pk)
        lines = by_exposure.get(image.pk, {})
        ctf = None
        if alias:
            with appion_use(alias):
                shifts, ctf = _stored_shifts(lines), _stored_ctf(lines)
        else:
            shifts = None
        last = lines.get(steps[-1]) if steps else None
        records.append(ExposureRecord(
            exposure_id=image.pk, filename=image.filename, state=_state(list(lines.values()), steps),
            truth_shifts_px=truth["shifts"], truth_defocus_angstrom=truth["defocus"], stored_shifts_px=shifts,
            stored_defocus_angstrom=None if ctf is None else (ctf.defocus1 * 1e10, ctf.defocus2 * 1e10),
            fit_resolution_angstrom=None if ctf is None else finite_or_none(ctf.ctffind4_resolution),
            arrived_at_s=_epoch(last.arrived_at) if last else _epoch(image.timestamp),
            stored_at_s=_epoch(last.stored_at) if last and last.state == StepState.DONE else None,
            worker_s=_worker_s(list(lines.values())),
            error="; ".join(f"{s}: {line.last_error}" for s, line in lines.items() if line.last_error)))
    return records
