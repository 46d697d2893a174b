"""What the dashboard and the admin show about results: read-only queries over the classic tables.

A session's results are those of one motion-correction run (``ApDDStackRunData``) and one CTF run
(``ApAceRunData``): the ones SEMC's processing run wrote (same run name and session, same run
directory), or, for a session processed by classic Appion alone, the session's newest runs. An exposure
is named by its ``AcquisitionImageData`` id, raw or aligned; both lead to the same results. Everything
is found by integer ids; file names come from the database and are checked before they are used.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from semc import models as m
from semc.base.errors import ProcessingError
from semc.models.codecs import seq_decode
from semc.models.databases import appion_alias_for_project
from semc.models.routers import APPION, current_appion_alias

__all__ = [
    "RESOLUTION_UNKNOWN_ANGSTROM",
    "ClassicRuns",
    "CtfPoint",
    "DriftPoint",
    "ExposureResults",
    "Micrograph",
    "classic_runs",
    "ctf_points",
    "drift_points",
    "exposure_results",
    "newest_micrographs",
    "safe_file",
    "session_appion",
]

logger = logging.getLogger(__name__)

#: classic Appion stores an infinite fit resolution as this value (compat §5.6)
RESOLUTION_UNKNOWN_ANGSTROM = 100000.0


@contextlib.contextmanager
def session_appion(session_id: int) -> Iterator[str]:
    """Within the block, Appion models read the Appion database of the session's project."""
    project_id = (m.ProjectExperiment.objects.filter(session_id=session_id).order_by("id")
                  .values_list("project_id", flat=True).first())
    alias = APPION
    if project_id is not None:
        try:
            alias = appion_alias_for_project(project_id)
        except ProcessingError as exc:  # no or a bad processingdb row: the default Appion database
            logger.warning("session=%s project=%s: %s; reading the default Appion database", session_id,
                           project_id, exc)
    token = current_appion_alias.set(alias)
    try:
        yield alias
    finally:
        current_appion_alias.reset(token)


@dataclass(frozen=True, slots=True)
class ClassicRuns:
    ddstackrun: m.ApDDStackRunData | None
    acerun: m.ApAceRunData | None

    @property
    def key(self) -> str:
        return f"{getattr(self.ddstackrun, 'pk', 0)}-{getattr(self.acerun, 'pk', 0)}"


def classic_runs(session_id: int, run: m.ProcessingRun | None) -> ClassicRuns:
    """The classic runs holding the results of SEMC's ``run`` (or the session's newest ones)."""
    stacks = m.ApDDStackRunData.objects.filter(session_id=session_id).order_by("-id")
    aces = m.ApAceRunData.objects.filter(session_id=session_id).order_by("-id")
    if run is not None:
        stacks, aces = stacks.filter(runname=run.name), aces.filter(name=run.name)
        by_path = stacks.filter(path__path=run.rundir).first()
        return ClassicRuns(ddstackrun=by_path or stacks.first(), acerun=aces.first())
    return ClassicRuns(ddstackrun=stacks.first(), acerun=aces.first())


def _sources_of(image_ids: list[int]) -> dict[int, int]:
    """aligned image -> its raw source (images that are not aligned map to themselves)."""
    pairs = dict(m.ApDDAlignImagePairData.objects.filter(result_id__in=image_ids)
                 .values_list("result_id", "source_id"))
    return {i: pairs.get(i) or i for i in image_ids}


def _times(image_ids) -> dict[int, dt.datetime | None]:
    return dict(m.AcquisitionImageData.objects.filter(id__in=list(image_ids)).values_list("id", "timestamp"))


def session_start(session_id: int) -> dt.datetime | None:
    """The first exposure's time (the origin of the session plots)."""
    return (m.AcquisitionImageData.objects.filter(session_id=session_id).order_by("timestamp")
            .values_list("timestamp", flat=True).first())


def _minutes(moment: dt.datetime | None, origin: dt.datetime | None) -> float | None:
    if moment is None or origin is None:
        return None
    return (moment - origin).total_seconds() / 60.0


@dataclass(frozen=True, slots=True)
class CtfPoint:
    """One CTF result: defocus (µm, mean of the two), astigmatism (Å, difference), fit resolution (Å)."""

    ctf_id: int
    image_id: int
    source_id: int
    minutes: float | None
    defocus_um: float
    astigmatism_angstrom: float
    angle_degree: float | None
    resolution_angstrom: float | None  # None: no fit resolution (classic 100000)
    cross_correlation: float | None


def ctf_points(session_id: int, acerun: m.ApAceRunData | None, *,
               image_ids: Iterable[int] | None = None) -> list[CtfPoint]:
    """The run's CTF results (of the given images only, when named) in acquisition order."""
    if acerun is None:
        return []
    query = m.ApCtfData.objects.filter(acerun=acerun)
    if image_ids is not None:
        query = query.filter(image_id__in=sorted(set(image_ids)))
    rows = list(query.order_by("id").values_list(
        "id", "image_id", "defocus1", "defocus2", "angle_astigmatism", "ctffind4_resolution", "cross_correlation"))
    sources = _sources_of([r[1] for r in rows])
    times = _times(sources.values())
    origin = session_start(session_id)
    points = []
    for ctf_id, image_id, d1, d2, angle, resolution, cc in rows:
        if d1 is None or d2 is None:
            continue
        known = resolution is not None and math.isfinite(resolution) and resolution < RESOLUTION_UNKNOWN_ANGSTROM
        points.append(CtfPoint(ctf_id=ctf_id, image_id=image_id, source_id=sources[image_id],
                               minutes=_minutes(times.get(sources[image_id]), origin),
                               defocus_um=0.5 * (d1 + d2) * 1e6, astigmatism_angstrom=abs(d2 - d1) * 1e10,
                               angle_degree=angle, resolution_angstrom=resolution if known else None,
                               cross_correlation=cc))
    points.sort(key=lambda p: (p.minutes is None, p.minutes or 0.0, p.ctf_id))
    return points


@dataclass(frozen=True, slots=True)
class DriftPoint:
    """One aligned exposure's drift: total path length of its frame trajectory (Å)."""

    aligned_id: int
    source_id: int
    minutes: float | None
    total_angstrom: float
    frames: int


def trajectory_angstrom(trajectory: m.ApDDFrameTrajectoryData, apix: float) -> tuple[list[float], list[float]]:
    """Frame positions of a trajectory row in Å (the row holds pixels of the aligned image)."""
    xs = seq_decode(trajectory.pos_x, item_type=float, column="SEQ|pos_x")
    ys = seq_decode(trajectory.pos_y, item_type=float, column="SEQ|pos_y")
    n = min(len(xs), len(ys))
    return [x * apix for x in xs[:n]], [y * apix for y in ys[:n]]


def path_length(xs: list[float], ys: list[float]) -> float:
    return sum(math.hypot(xs[i + 1] - xs[i], ys[i + 1] - ys[i]) for i in range(len(xs) - 1))


def drift_points(session_id: int, ddstackrun: m.ApDDStackRunData | None, *,
                 image_ids: Iterable[int] | None = None) -> list[DriftPoint]:
    """Total drift of each aligned exposure of the run (of the given aligned images only, when named),
    in acquisition order."""
    if ddstackrun is None:
        return []
    query = m.ApDDAlignStatsData.objects.filter(ddstackrun=ddstackrun)
    if image_ids is not None:
        query = query.filter(image_id__in=sorted(set(image_ids)))
    stats = {s.image_id: s for s in query.select_related("trajectory").order_by("id")}
    sources = _sources_of(list(stats))
    times = _times(sources.values())
    origin = session_start(session_id)
    points = []
    for aligned_id, row in stats.items():
        if row.trajectory is None or not row.apix:
            continue
        xs, ys = trajectory_angstrom(row.trajectory, row.apix)
        points.append(DriftPoint(aligned_id=aligned_id, source_id=sources[aligned_id],
                                 minutes=_minutes(times.get(sources[aligned_id]), origin),
                                 total_angstrom=path_length(xs, ys), frames=len(xs)))
    points.sort(key=lambda p: (p.minutes is None, p.minutes or 0.0, p.aligned_id))
    return points


@dataclass(frozen=True, slots=True)
class Micrograph:
    source_id: int
    aligned_id: int
    filename: str


def newest_micrographs(ddstackrun: m.ApDDStackRunData | None, limit: int = 6) -> list[Micrograph]:
    """The run's newest aligned (not dose-weighted) micrographs, newest first."""
    if ddstackrun is None:
        return []
    pairs = list(m.ApDDAlignImagePairData.objects.filter(ddstackrun=ddstackrun).order_by("-id")
                 .values_list("source_id", "result_id")[: 4 * limit])
    names = dict(m.AcquisitionImageData.objects.filter(id__in=[r for _, r in pairs]).values_list("id", "filename"))
    out = []
    for source, result in pairs:
        name = names.get(result)
        if name is not None and not name.endswith("-DW"):
            out.append(Micrograph(source_id=source, aligned_id=result, filename=name))
    return out[:limit]


def safe_file(directory: str | None, name: str | None) -> Path | None:
    """``directory/name`` for a plain file name read from the database, or None.

    The name must be a single path component (no separator, not ``.``/``..``) and the file must exist
    as a regular file inside ``directory`` (symbolic links are not followed out of it).
    """
    if not directory or not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        return None
    folder = Path(directory)
    path = folder / name
    try:
        if path.is_file() and path.resolve().parent == folder.resolve():
            return path
    except (OSError, ValueError):
        return None
    return None


@dataclass(frozen=True, slots=True)
class ExposureResults:
    """Everything stored about one exposure (raw and aligned), from the classic tables."""

    image: m.AcquisitionImageData
    raw_id: int
    aligned: m.AcquisitionImageData | None
    ctf: m.ApCtfData | None
    stats: m.ApDDAlignStatsData | None
    trajectory: m.ApDDFrameTrajectoryData | None
    voltage_kv: float | None

    @property
    def micrograph_path(self) -> Path | None:
        image = self.aligned or self.image
        return safe_file(image.session.image_path if image.session_id else None, image.image)

    @property
    def diagnostic_path(self) -> Path | None:
        """CTFFIND's diagnostic spectrum (``<short>-pow.mrc`` beside the ``graph3`` picture in ``opimages/``)."""
        if self.ctf is None or self.ctf.acerun is None or self.ctf.acerun.path is None:
            return None
        graph = self.ctf.graph3 or self.ctf.graph1 or ""
        stem = graph.rsplit(".", 1)[0] if "." in graph else ""
        folder = self.ctf.acerun.path.path
        return (safe_file(os.path.join(folder, "opimages"), f"{stem}.mrc") or safe_file(folder, f"{stem}.mrc")
                if stem else None)

    @property
    def avrot_path(self) -> Path | None:
        """CTFFIND's ``_avrot.txt`` (beside the results file named by ``ctfvalues_file``)."""
        if self.ctf is None or self.ctf.acerun is None or self.ctf.acerun.path is None:
            return None
        values = self.ctf.ctfvalues_file or ""
        if not values.endswith(".txt"):
            return None
        return safe_file(self.ctf.acerun.path.path, values[:-4] + "_avrot.txt")

    @property
    def drift_angstrom(self) -> tuple[list[float], list[float]] | None:
        if self.trajectory is None or self.stats is None or not self.stats.apix:
            return None
        return trajectory_angstrom(self.trajectory, self.stats.apix)


def exposure_results(image_id: int) -> ExposureResults | None:
    """The results of the exposure ``image_id`` (raw or aligned); None if there is no such image.

    Call inside :func:`session_appion` for the image's session.
    """
    image = m.AcquisitionImageData.objects.select_related("session", "scope").filter(pk=image_id).first()
    if image is None:
        return None
    raw_id = (m.ApDDAlignImagePairData.objects.filter(result_id=image.pk).values_list("source_id", flat=True)
              .first() or image.pk)
    results = list(m.ApDDAlignImagePairData.objects.filter(source_id=raw_id).order_by("-id")
                   .values_list("result_id", flat=True))
    aligned = None
    if results:
        candidates = m.AcquisitionImageData.objects.select_related("session").filter(id__in=results)
        plain = [a for a in candidates if not (a.filename or "").endswith("-DW")]
        aligned = max(plain, key=lambda a: a.pk) if plain else None
    aligned_id = aligned.pk if aligned is not None else None
    ctf = (m.ApCtfData.objects.select_related("acerun__path").filter(image_id__in=[i for i in (aligned_id, raw_id)
                                                                                  if i]).order_by("-id").first())
    stats = (m.ApDDAlignStatsData.objects.select_related("trajectory").filter(image_id=aligned_id)
             .order_by("-id").first() if aligned_id else None)
    trajectory = stats.trajectory if stats is not None else (
        m.ApDDFrameTrajectoryData.objects.filter(image_id=aligned_id).order_by("-id").first() if aligned_id else None)
    raw = image if image.pk == raw_id else m.AcquisitionImageData.objects.select_related("scope").get(pk=raw_id)
    tension = raw.scope.high_tension if raw.scope_id and raw.scope else None
    return ExposureResults(image=image, raw_id=raw_id, aligned=aligned, ctf=ctf, stats=stats, trajectory=trajectory,
                           voltage_kv=tension / 1000.0 if tension else None)
