"""Storing CTF results exactly as classic Appion does (compat §2.4, §3.5, §5.6).

The run rows (ApAceRunData with its ApCtfFind4ParamsData and path) are created once; per
exposure one ApCtfData row — the finishing record — holds the classic mapping of CTFFIND's
values (metres, |defocus1| <= |defocus2|, angle + 90° wrapped into (−90, 90]) and the graph
file names (base names; myamiweb looks in the run directory and its ``opimages/``). When
chained after motion correction, the row points at the aligned ``-a`` image.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from semc import models as m
from semc.base import ledger
from semc.base.errors import InputMissing
from semc.base.relion_star import Optics, micrographs_ctf_table, star_write
from semc.base.store import path_get_or_create
from semc.ctfestimation.calc.external import CtffindResult, apctfdata_values_from_ctffind
from semc.models.routers import current_appion_alias

__all__ = ["CtfRunState", "run_prepare", "acerun_ensure", "done_ids", "outcome_save", "view_update"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CtfRunState:
    acerun: m.ApAceRunData
    rundir: str
    chained: bool


def acerun_ensure(*, session_id: int, runname: str, rundir: str, params) -> m.ApAceRunData:
    """The run's ApAceRunData (identity: name and session), created with its parameters and path."""
    run = m.ApAceRunData.objects.filter(name=runname, session_id=session_id).order_by("id").first()
    if run is not None:
        return run
    ctffind4 = m.ApCtfFind4ParamsData.objects.create(
        bestdb=False, ampcontrast=params.amplitude_contrast, fieldsize=params.box_size,
        cs=params.spherical_aberration_mm, resmin=params.min_resolution_angstrom,
        defstep=params.defocus_step_angstrom / 1e4, shift_phase=params.find_phase_shift, local_refine=True)
    return m.ApAceRunData.objects.create(name=runname, session_id=session_id, path=path_get_or_create(rundir),
                                         ctffind4_params=ctffind4, hidden=False)


def run_prepare(controller) -> CtfRunState:
    config = controller.params.pipeline.ctfestimation
    run = acerun_ensure(session_id=controller.session.pk, runname=controller.params.runname,
                        rundir=controller.run.rundir, params=config.params)
    return CtfRunState(acerun=run, rundir=controller.run.rundir,
                       chained="motioncorrection" in controller.params.steps)


def _aligned_of(source_ids) -> dict[int, int]:
    """result (aligned, non-DW) -> source, from the pair rows."""
    pairs = list(m.ApDDAlignImagePairData.objects.filter(source_id__in=list(source_ids))
                 .values_list("source_id", "result_id"))
    names = dict(m.AcquisitionImageData.objects.filter(id__in=[r for _, r in pairs]).values_list("id", "filename"))
    return {r: s for s, r in pairs if r in names and not names[r].endswith("-DW")}


def done_ids(state: CtfRunState) -> set[int]:
    """Exposures with an ApCtfData row in this run (through the aligned image when chained)."""
    images = set(m.ApCtfData.objects.filter(acerun=state.acerun).values_list("image_id", flat=True))
    if not state.chained:
        return images
    pairs = m.ApDDAlignImagePairData.objects.filter(result_id__in=list(images)).values_list("source_id", flat=True)
    return set(pairs)


def outcome_save(state: CtfRunState, exposure_id: int, outcome, pipeline_outcome=None) -> dict[str, Any]:
    """Store one CTF result as its ApCtfData row; returns a small summary for the ledger."""
    image_id = exposure_id
    if state.chained:
        aligned = [r for r, s in _aligned_of([exposure_id]).items() if s == exposure_id]
        if not aligned:
            raise InputMissing("no aligned image to attach the CTF result to", step="ctfestimation",
                               exposure_id=exposure_id)
        image_id = max(aligned)
    values = apctfdata_values_from_ctffind(
        CtffindResult(micrograph_number=1, defocus1_angstrom=outcome.defocus_1_angstrom,
                      defocus2_angstrom=outcome.defocus_2_angstrom, azimuth_deg=outcome.azimuth_degree,
                      phase_shift_rad=outcome.phase_shift_radian, cross_correlation=outcome.cross_correlation,
                      fit_resolution_angstrom=outcome.fit_resolution_angstrom),
        amplitude_contrast=outcome.amplitude_contrast, cs_mm=outcome.cs_mm,
        start_defocus_angstrom=outcome.start_defocus_angstrom).as_columns()
    jpg, png = Path(outcome.files["graph3"]).name, Path(outcome.files["graph4"]).name
    graphs = dict(graph1=jpg, graph2=png, graph3=jpg, graph4=png, ctfvalues_file=Path(outcome.files["results"]).name)
    with transaction.atomic(using=current_appion_alias.get()):
        row, created = m.ApCtfData.objects.get_or_create(acerun=state.acerun, image_id=image_id,
                                                          defaults={**values, **graphs})
    image = m.AcquisitionImageData.objects.select_related("session").get(pk=image_id)
    return {"ctf_id": row.pk, "image_id": image_id, "defocus_u_A": outcome.defocus_1_angstrom,
            "defocus_v_A": outcome.defocus_2_angstrom, "angle_deg": outcome.azimuth_degree,
            "phase_shift_rad": outcome.phase_shift_radian, "cc": outcome.cross_correlation,
            "resolution_A": None if outcome.fit_resolution_angstrom == float("inf") else outcome.fit_resolution_angstrom,
            "micrograph": os.path.join(image.session.image_path or "", image.image or ""),
            "diagnostic": outcome.files["diagnostic"], "voltage_kv": outcome.voltage_kv, "cs_mm": outcome.cs_mm,
            "amplitude_contrast": outcome.amplitude_contrast}


def view_update(state: CtfRunState, run) -> None:
    """Rewrite ``<rundir>/micrographs_ctf.star`` from the run's stored results."""
    results = ledger.done_results(run, "ctfestimation", having="ctf_id")
    if not results:
        return
    motion = {r.get("aligned_id"): r for r in ledger.done_results(run, "motioncorrection")}
    first = results[0]
    pixel = motion.get(first["image_id"], {}).get("pixel_size_A", 1.0)
    optics = Optics(pixel_size_angstrom=pixel, original_pixel_size_angstrom=motion.get(first["image_id"], {}).get(
        "input_pixel_size_A", pixel), voltage_kv=first["voltage_kv"], cs_mm=first["cs_mm"],
                    amplitude_contrast=first["amplitude_contrast"])
    rows = [{"micrograph": r["micrograph"], "ctf_image": r["diagnostic"] + ":mrc", "defocus_u": r["defocus_u_A"],
             "defocus_v": r["defocus_v_A"], "angle": r["angle_deg"], "figure_of_merit": r["cc"],
             "max_resolution": r["resolution_A"] if r["resolution_A"] is not None else 999.0} for r in results]
    star_write(Path(state.rundir) / "micrographs_ctf.star", optics, micrographs_ctf_table(rows))
