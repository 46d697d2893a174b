"""``--no-commit``: a dry run that computes everything and writes files in the run directory only.

Classic Appion's ``--no-commit`` ran the programs and wrote what it would have inserted into
``<image>_<type>.db`` text files. SEMC's dry run does the same with no database write at all:
no ApAppionJobData or Script* row, no SEMC run or ledger row, no aligned image or CTF row. It reads
the session once (the exposures there now, the classic filters applied), processes them on the
cluster, and leaves per exposure in the run directory: the engine's outputs (``<filename>_c.mrc``,
``<filename>_c_DW.mrc``, CTFFIND's files), the motioncorr-format ``<filename>_st_Log.txt``, and
``<filename>_<step>.db.json`` with what would have been stored. It never waits for new exposures.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections import deque
from pathlib import Path
from typing import Any

from semc.base.errors import ProcessingError

__all__ = ["dry_run", "dry_run_ids"]

logger = logging.getLogger(__name__)


def dry_run_ids(params, *, session_id: int, selection=None) -> list[int]:
    """The exposures a dry run processes: the session's (preset, filters, rejections), in classic order."""
    from semc.base.retrieve import exposure_ids_list, rejected_ids
    from semc.classic.selection import ImageSelection, excluded_ids

    selection = selection or ImageSelection()
    ids = [pk for pk, _ in exposure_ids_list(session_id=session_id, preset=params.preset)]
    dropped = excluded_ids(ids, selection)
    if params.apply_rejects or params.tilt_mode != "all":
        dropped |= rejected_ids(image_ids=ids, tilt_mode=params.tilt_mode, use_viewer=params.apply_rejects,
                                use_assessment=params.apply_rejects)
    ids = [pk for pk in ids if pk not in dropped]
    ids.sort(reverse=params.reverse)
    return ids[: params.limit] if params.limit is not None else ids


def _summary(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _summary(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _summary(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_summary(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str, allow_nan=True) + "\n")
    os.replace(tmp, path)


def _motioncorr_log(rundir: Path, filename: str, result) -> None:
    from semc.motioncorrection.calc.appion import motioncorr_log_text, motioncorr_positions

    positions = motioncorr_positions(result.shifts_px, output_bin=result.output_bin)
    (rundir / f"{filename}_st_Log.txt").write_text(motioncorr_log_text(positions, throw=result.first_frame))


def _record(rundir: Path, inputs, outcome) -> int:
    failures = 0
    for step, result in outcome.outcomes.items():
        if step == "motioncorrection":
            _motioncorr_log(rundir, inputs.filename, result)
        _write_json(rundir / f"{inputs.filename}_{step}.db.json",
                    {"exposure_id": inputs.exposure_id, "filename": inputs.filename, "step": step,
                     "would_store": _summary(result)})
        logger.info("exposure=%s step=%s computed (dry run, nothing stored)", inputs.exposure_id, step)
    for step, error in outcome.errors.items():
        failures += 1
        logger.warning("exposure=%s step=%s failed: %s", inputs.exposure_id, step, error)
    return failures


def dry_run(params, cluster, *, selection=None, adjust=None) -> int:
    """Process the selected exposures once without writing to any database; 0 if all succeeded, else 1."""
    from semc.base.retrieve import exposure_inputs_get, session_get
    from semc.classic.controller import adjusted_submit
    from semc.loop import _project_of_session
    from semc.models.databases import appion_alias_for_project
    from semc.models.routers import current_appion_alias
    from semc.pipeline import exposure_pipeline

    session = session_get(params.session)
    project_id = params.project_id or _project_of_session(session.pk)
    if project_id is not None:  # rejections are read from the project's Appion database
        current_appion_alias.set(appion_alias_for_project(project_id))
    rundir = Path(params.rundir)
    rundir.mkdir(parents=True, exist_ok=True)
    ids = dry_run_ids(params, session_id=session.pk, selection=selection)
    logger.info("dry run (--no-commit) of %d exposures of session %s: nothing is written to the database",
                len(ids), session.name)
    capacity = params.max_in_flight or max(2, 2 * len(cluster.client.scheduler_info().get("workers", {})))
    pending, in_flight, failures = deque(ids), deque(), 0
    while pending or in_flight:
        while pending and len(in_flight) < capacity:
            exposure_id = pending.popleft()
            try:
                inputs = exposure_inputs_get(exposure_id)
            except ProcessingError as exc:
                failures += 1
                logger.warning("exposure=%s cannot be read: %s", exposure_id, exc)
                continue
            key = f"semc-dryrun-{os.getpid()}-{exposure_id}"
            future = adjusted_submit(cluster.client, adjust, exposure_pipeline, inputs, params.pipeline, key,
                                     key=key, pure=False, resources=cluster.gpu_resources or None, retries=0)
            in_flight.append((inputs, future))
        inputs, future = in_flight.popleft()
        try:
            outcome = future.result()
        except ProcessingError as exc:
            failures += 1
            logger.warning("exposure=%s failed: %s", inputs.exposure_id, exc)
            continue
        finally:
            future.release()
        failures += _record(rundir, inputs, outcome)
    logger.info("dry run finished: %d exposures, %d failures", len(ids), failures)
    return 1 if failures else 0
