"""The watcher: find new movies and gain references in session folders, wait until each is complete
and stable, read its metadata, and register it in the Leginon tables exactly once.

One pass (:meth:`Watcher.run_pass`) per session folder:

1. **Scan, incrementally.** Every known directory is ``stat``-ed; only those whose modification
   time changed since they were last listed are listed again (a directory's mtime changes when
   an entry is added, removed or renamed in it). Directory times are kept in the registry, so a
   restart lists nothing that did not change. A directory modified within ``racy_s`` of its
   listing is listed again next pass (file systems with coarse times). New movie and gain names
   become registry rows at once.
2. **Check what waits.** Only files not yet registered are looked at: a file that changed since
   the last pass waits; one quiet for ``settle_s`` gets the readiness check of
   :mod:`semc.base.io` (its frame count checked against the metadata's, when known); an incomplete
   file unchanged for ``broken_after_s`` is *broken* (never registered; it waits again if it
   changes). Metadata (EPU XML, SerialEM mdoc) is read once, when the movie is ready, and waited
   for up to ``metadata_wait_s``.
3. **Register** (:mod:`semc.ingest.register`), oldest first, then mark the registry row.

Registered files are never looked at again. Failures (unreadable file, no pixel size, a gain of
the wrong shape) are kept with their message and retried when the file changes or the watcher
restarts (perhaps with other options).
"""

from __future__ import annotations

import getpass
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.db import close_old_connections
from django.utils import timezone

from semc import models as m
from semc.base.errors import CorruptInput, InputMissing, ProcessingError
from semc.base.io import load_gain, movie_readiness, open_movie
from semc.ingest.layout import (
    FilePatterns,
    SessionFolder,
    epu_metadata_path,
    leginon_filename,
    mdoc_candidates,
    movie_kind,
    sessions_find,
    unique_filename,
)
from semc.ingest.metadata import AcquisitionMetadata, epu_xml_parse, mdoc_metadata, mdoc_parse
from semc.ingest.models import WatchedDirectory, WatchedFile, WatchedSession, path_digest
from semc.ingest.register import (
    Overrides,
    gain_orientation_detect,
    gain_register,
    gain_shape_check,
    movie_header_read,
    movie_register,
    reference_session_ensure,
    session_rows_ensure,
)

__all__ = ["METADATA_MODES", "PassReport", "SessionWatch", "WatchOptions", "Watcher", "session_counts"]

logger = logging.getLogger(__name__)

METADATA_MODES = ("auto", "epu", "serialem", "none")
_State = WatchedFile.State
_OPEN = (_State.WAITING, _State.BROKEN, _State.FAILED)


@dataclass(frozen=True, slots=True)
class WatchOptions:
    """How the watcher finds, waits for and registers files (times in seconds)."""

    layout: str = "session"
    session_name: str | None = None
    project: str | None = None
    user: str | None = None
    processed: Path | None = None
    patterns: FilePatterns = field(default_factory=FilePatterns)
    metadata: str = "auto"
    settle_s: float = 10.0
    broken_after_s: float = 120.0
    metadata_wait_s: float = 30.0
    metadata_root: Path | None = None  # EPU: the session folder with the XMLs when the movies go elsewhere
    gain_orientation_auto: bool = False  # find each gain's orientation from the first movie that uses it
    gain: Path | None = None
    overrides: Overrides = field(default_factory=Overrides)
    racy_s: float = 2.0

    def __post_init__(self) -> None:
        from semc.base.errors import InvalidParameters

        if self.metadata not in METADATA_MODES:
            raise InvalidParameters(f"metadata must be one of {', '.join(METADATA_MODES)}", step="ingest")
        if self.settle_s < 0 or self.broken_after_s < self.settle_s or self.metadata_wait_s < 0:
            raise InvalidParameters("need settle >= 0, broken-after >= settle and metadata-wait >= 0", step="ingest")
        if self.metadata_root is not None and self.layout != "session":
            raise InvalidParameters("a metadata root goes with one session folder (layout session)", step="ingest")


@dataclass(slots=True)
class PassReport:
    """What one pass did."""

    sessions: int = 0
    directories_checked: int = 0
    directories_listed: int = 0
    new_files: int = 0
    registered: int = 0
    waiting: int = 0
    broken: int = 0
    failed: int = 0
    seconds: float = 0.0

    def add(self, other: PassReport) -> None:
        for name in ("directories_checked", "directories_listed", "new_files", "registered", "waiting", "broken",
                     "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


class SessionWatch:
    """One watched session folder: its registry rows in memory, scanned and checked pass by pass."""

    def __init__(self, folder: SessionFolder, options: WatchOptions) -> None:
        self.folder, self.options = folder, options
        self.root = str(folder.raw)
        self.processed = Path(folder.processed)
        self.row = self._row()
        if Path(self.row.processed_dir) != self.processed:  # the Leginon session's paths were set on creation
            logger.warning("session=%s keeps its processed folder %s (asked for %s)", self.row.session_name,
                           self.row.processed_dir, self.processed)
            self.processed = Path(self.row.processed_dir)
        self.dirs: dict[str, int] = {}
        self.children: dict[str, list[str]] = {}
        self.files: dict[str, tuple[int, str]] = {}  # path -> (row id, state), every file known
        self.by_dir: dict[str, set[str]] = {}
        self.open: dict[str, WatchedFile] = {}  # not registered: checked every pass
        self.gains: set[str] = set()
        self.taken: set[str] = set()
        self._explicit_gain: tuple[int, object] | None = None
        self._orientations: dict[str, tuple[int, int]] = {}
        self._metadata_cache: dict[tuple[str, int], object] = {}
        self._rows_cache: dict = {}
        self._load()

    # --- registry -------------------------------------------------------------------------------
    def _row(self) -> WatchedSession:
        digest = path_digest(self.root)
        row = WatchedSession.objects.filter(root_digest=digest).first()
        if row is None:
            row = WatchedSession.objects.create(
                root=self.root, root_digest=digest, layout=self.options.layout,
                session_name=self._free_session_name(self.folder.name), project_name=self.folder.project or "",
                user_name=self.folder.user or self.options.user or getpass.getuser(),
                processed_dir=str(self.processed))
        return row

    @staticmethod
    def _free_session_name(name: str) -> str:
        """The folder's name, or ``name_2``, ... when a Leginon session of that name is not ours."""
        ours = set(WatchedSession.objects.values_list("leginon_session_id", flat=True))
        candidate, n = name, 1
        while any(pk not in ours for pk in m.SessionData.objects.filter(name=candidate).values_list("id", flat=True)):
            n += 1
            candidate = f"{name}_{n}"
        return candidate

    def _load(self) -> None:
        for path, mtime in WatchedDirectory.objects.filter(session=self.row).values_list("path", "mtime_ns"):
            self.dirs[path] = mtime
        for path in self.dirs:
            if path != self.root:
                self.children.setdefault(os.path.dirname(path), []).append(path)
        for row in WatchedFile.objects.filter(session=self.row).only(
                "id", "path", "state", "filename", "kind").iterator(chunk_size=5000):
            self._remember(row.path, row.id, row.state, row.kind)
            if row.filename and row.state == _State.REGISTERED:
                self.taken.add(row.filename)
        retry = WatchedFile.objects.filter(session=self.row, state__in=[*_OPEN, _State.VANISHED])
        for row in retry:
            if row.state == _State.VANISHED:
                continue
            if row.state != _State.WAITING:  # a restart re-examines failures (options may have changed)
                row.state, row.ready_since = _State.WAITING, None
                row.save(update_fields=["state", "ready_since", "updated_at"])
            self.open[row.path] = row
        logger.info("session=%s watching %s: %d directories, %d files known, %d waiting", self.row.session_name,
                    self.root, len(self.dirs), len(self.files), len(self.open))

    def _remember(self, path: str, pk: int, state: str, kind: str) -> None:
        self.files[path] = (pk, state)
        if kind == WatchedFile.Kind.GAIN:
            self.gains.add(path)
        self.by_dir.setdefault(os.path.dirname(path), set()).add(path)

    def leginon_session(self) -> m.SessionData:
        if self.row.leginon_session_id is None or not hasattr(self, "_session"):
            self._session = session_rows_ensure(
                name=self.row.session_name, processed=self.processed, root=Path(self.root),
                user=self.row.user_name, project=self.row.project_name or None,
                session_id=self.row.leginon_session_id)
            if self.row.leginon_session_id != self._session.pk:
                self.row.leginon_session_id = self._session.pk
                self.row.save(update_fields=["leginon_session_id", "updated_at"])
        return self._session

    # --- 1. scan ---------------------------------------------------------------------------------
    def scan(self, report: PassReport) -> None:
        now = time.time()
        reached: set[str] = set()
        listed: list[WatchedDirectory] = []
        stack = [self.root]
        skip = os.path.abspath(self.processed)
        while stack:
            directory = stack.pop()
            st = _stat(directory)
            if st is None:
                continue
            reached.add(directory)
            report.directories_checked += 1
            if self.dirs.get(directory) == st.st_mtime_ns:
                stack.extend(self.children.get(directory, ()))
                continue
            subdirs, found = self._list(directory, skip)
            report.directories_listed += 1
            report.new_files += self._files_update(directory, found, now)
            self.children[directory] = subdirs
            clean = now - st.st_mtime_ns / 1e9 > self.options.racy_s
            self.dirs[directory] = st.st_mtime_ns if clean else -1
            listed.append(WatchedDirectory(session=self.row, path=directory, path_digest=path_digest(directory),
                                           mtime_ns=self.dirs[directory], listed_at=now))
            stack.extend(subdirs)
        if listed:
            from django.db import connections, router

            features = connections[router.db_for_write(WatchedDirectory)].features
            target = ["session", "path_digest"] if features.supports_update_conflicts_with_target else None
            WatchedDirectory.objects.bulk_create(listed, update_conflicts=True, unique_fields=target,
                                                 update_fields=["mtime_ns", "listed_at"])
        gone = [d for d in self.dirs if d not in reached]
        for directory in gone:
            self.dirs.pop(directory, None)
            self.children.pop(directory, None)
            self._files_update(directory, [], now)
        if gone:
            WatchedDirectory.objects.filter(session=self.row, path_digest__in=[path_digest(d) for d in gone]).delete()

    def _list(self, directory: str, skip: str) -> tuple[list[str], list[tuple[str, str, os.stat_result]]]:
        subdirs, found = [], []
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
            logger.warning("session=%s cannot list %s: %s", self.row.session_name, directory, exc)
            return [], []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.path != skip:
                        subdirs.append(entry.path)
                    continue
                kind = self.options.patterns.kind(entry.name)
                if kind and entry.is_file():
                    found.append((entry.path, kind, entry.stat()))
            except FileNotFoundError:  # gone between listing and stat
                continue
        return subdirs, found

    def _files_update(self, directory: str, found: list[tuple[str, str, os.stat_result]], now: float) -> int:
        present = {path for path, _kind, _st in found}
        for path in self.by_dir.get(directory, set()) - present:
            _pk, state = self.files[path]
            if state != _State.REGISTERED and state != _State.VANISHED:
                self._vanished(path)
        new = [WatchedFile(session=self.row, path=path, path_digest=path_digest(path), kind=kind,
                           size_bytes=st.st_size, mtime_ns=st.st_mtime_ns, changed_at=now,
                           reason="found")
               for path, kind, st in found if path not in self.files]
        if new:
            WatchedFile.objects.bulk_create(new, ignore_conflicts=True)
            digests = [r.path_digest for r in new]
            for start in range(0, len(digests), 900):
                for row in WatchedFile.objects.filter(session=self.row, path_digest__in=digests[start:start + 900]):
                    self._remember(row.path, row.id, row.state, row.kind)
                    if row.state != _State.REGISTERED:
                        self.open[row.path] = row
        for path in present & set(self.by_dir.get(directory, set())):
            if self.files[path][1] == _State.VANISHED:  # back again
                row = WatchedFile.objects.get(pk=self.files[path][0])
                self._state(row, _State.WAITING, "reappeared")
                self.open[path] = row
        return len(new)

    def _vanished(self, path: str) -> None:
        row = self.open.pop(path, None) or WatchedFile.objects.get(pk=self.files[path][0])
        self._state(row, _State.VANISHED, "file is gone")
        logger.warning("session=%s %s vanished before it was registered", self.row.session_name, path)

    def _state(self, row: WatchedFile, state: str, reason: str, **values) -> None:
        row.state, row.reason = state, reason[:2000]
        for key, value in values.items():
            setattr(row, key, value)
        row.save()
        self.files[row.path] = (row.id, state)

    # --- 2. check and 3. register ----------------------------------------------------------------
    def check(self, report: PassReport) -> None:
        now = time.time()
        rows = sorted(self.open.values(), key=lambda r: (r.kind != WatchedFile.Kind.GAIN, r.mtime_ns, r.path))
        for row in rows:
            try:
                self._check_one(row, now, report)
            except ProcessingError as exc:
                self._failed(row, exc)
            except OSError as exc:
                self._failed(row, CorruptInput(f"cannot read: {exc}", step="ingest", path=row.path))
        for row in self.open.values():
            if row.state == _State.WAITING and not (row.kind == WatchedFile.Kind.GAIN and row.reason == "ready"):
                report.waiting += 1  # a ready gain no movie has used yet is not waiting for anything
            elif row.state == _State.BROKEN:
                report.broken += 1
            elif row.state == _State.FAILED:
                report.failed += 1

    def _failed(self, row: WatchedFile, exc: ProcessingError) -> None:
        st = _stat(exc.path) if exc.path and exc.path.lower().endswith((".xml", ".mdoc")) else None
        if st is not None:  # a metadata file that does not parse: retried when it changes
            row.metadata_path = exc.path
            row.details = {**(row.details or {}), "metadata_mtime_ns": st.st_mtime_ns}
        if row.state != _State.FAILED or row.reason != str(exc):
            logger.error("session=%s cannot register %s: %s", self.row.session_name, row.path, exc)
        self._state(row, _State.FAILED, str(exc), error_kind=type(exc).__name__)

    def _check_one(self, row: WatchedFile, now: float, report: PassReport) -> None:
        st = _stat(row.path)
        if st is None:
            self._vanished(row.path)
            return
        if (st.st_size, st.st_mtime_ns) != (row.size_bytes, row.mtime_ns) or self._metadata_changed(row):
            self._state(row, _State.WAITING, "changing", size_bytes=st.st_size, mtime_ns=st.st_mtime_ns,
                        changed_at=now, ready_since=None, error_kind="")
            return
        if row.state != _State.WAITING:
            return
        quiet = now - st.st_mtime_ns / 1e9
        if quiet < self.options.settle_s:
            return
        if row.kind == WatchedFile.Kind.GAIN:
            self._gain_check(row, quiet)
            return
        status, meta, why = self._metadata(row.path)
        if status == "unsettled":
            self._state(row, _State.WAITING, why)
            return
        expected = meta.n_fractions if meta is not None and movie_kind(row.path) != "eer" else None
        readiness = movie_readiness(row.path, expected_frames=expected, quiet_s=self.options.settle_s)
        if not readiness.complete:
            if quiet >= self.options.broken_after_s:
                if row.state != _State.BROKEN:
                    logger.warning("session=%s %s is broken: %s, unchanged for %.0f s", self.row.session_name,
                                   row.path, readiness.reason, quiet)
                self._state(row, _State.BROKEN, readiness.reason)
            elif row.reason != readiness.reason:
                self._state(row, _State.WAITING, readiness.reason)
            return
        if not readiness.stable:
            return
        if row.ready_since is None:
            self._state(row, _State.WAITING, "ready", ready_since=now)
        if status == "missing":
            if now - row.ready_since < self.options.metadata_wait_s:
                reason = f"waiting for metadata ({os.path.basename(why)} or another)"
                if row.reason != reason:
                    self._state(row, _State.WAITING, reason)
                return
            # registered without it, or failed: either way, its arrival later makes the movie be looked at again
            row.metadata_path, row.details = why, {**(row.details or {}), "metadata_mtime_ns": 0}
        self._register(row, meta, report)

    def _metadata_changed(self, row: WatchedFile) -> bool:
        """Whether the metadata file a failed or waiting movie depends on appeared or changed (then noted)."""
        recorded = row.details.get("metadata_mtime_ns") if row.details else None
        if not row.metadata_path or recorded is None:
            return False
        st = _stat(row.metadata_path)
        if st is None or st.st_mtime_ns == recorded:
            return False
        row.details = {**row.details, "metadata_mtime_ns": st.st_mtime_ns}
        return True

    def _parsed(self, path: str, st: os.stat_result, parse):
        key = (path, st.st_mtime_ns)
        if key not in self._metadata_cache:
            if len(self._metadata_cache) > 4096:
                self._metadata_cache.clear()
            self._metadata_cache[key] = parse(path)
        return self._metadata_cache[key]

    def _metadata(self, movie: str) -> tuple[str, AcquisitionMetadata | None, str]:
        """("found" | "missing" | "unsettled" | "none", metadata, the file read, expected, or why it waits)."""
        mode = self.options.metadata
        if mode == "none":
            return "none", None, ""
        candidates: list[tuple[str, str]] = []
        xml = self._epu_xml(movie)
        if mode in ("auto", "epu") and xml:
            candidates.append(("epu", xml))
        if mode in ("auto", "serialem"):
            candidates += [("serialem", c) for c in mdoc_candidates(movie)]
        for source, path in candidates:
            st = _stat(path)
            if st is None:
                continue
            if time.time() - st.st_mtime_ns / 1e9 < self.options.settle_s:
                return "unsettled", None, f"metadata {path} is being written"
            if source == "epu":
                meta = self._parsed(path, st, epu_xml_parse)
            else:
                meta = mdoc_metadata(self._parsed(path, st, mdoc_parse), movie_name=os.path.basename(movie))
            return "found", meta, path
        if mode in ("auto", "serialem"):
            meta = self._mdoc_in_folder(movie)
            if meta is not None:
                return "found", meta, meta.path
        if mode == "epu" and not xml:
            return "none", None, ""
        return "missing", None, xml or mdoc_candidates(movie)[0]

    def _epu_xml(self, movie: str) -> str | None:
        """The EPU XML of a movie: beside it, or at the same place under the metadata root (EPU writing
        the fractions to another folder than its session folder)."""
        xml = epu_metadata_path(movie)
        if xml is None or self.options.metadata_root is None:
            return xml
        return os.path.join(self.options.metadata_root, os.path.relpath(xml, self.root))

    def _mdoc_in_folder(self, movie: str) -> AcquisitionMetadata | None:
        """A session mdoc in the movie's folder whose section names the movie in ``SubFramePath``."""
        folder, name = os.path.dirname(movie), os.path.basename(movie)
        try:
            mdocs = [e.path for e in os.scandir(folder) if e.name.lower().endswith(".mdoc")]
        except OSError:
            return None
        for path in sorted(mdocs):
            st = _stat(path)
            if st is None:
                continue
            document = self._parsed(path, st, mdoc_parse)
            if any(v.get("SubFramePath", "").replace("\\", "/").rsplit("/", 1)[-1] == name
                   for _k, _i, v in document.sections):
                return mdoc_metadata(document, movie_name=name)
        return None

    def _gain_check(self, row: WatchedFile, quiet: float) -> None:
        if row.reason == "ready":  # checked already; a change would have reset it
            return
        readiness = movie_readiness(row.path, quiet_s=self.options.settle_s)
        if readiness.ready:
            if row.reason != "ready":
                self._state(row, _State.WAITING, "ready", ready_since=time.time())
        elif quiet >= self.options.broken_after_s:
            self._state(row, _State.BROKEN, readiness.reason)

    def _gain_for(self, movie: str, meta: AcquisitionMetadata | None) -> tuple[str | None, str]:
        """The gain reference of a movie, and why there is none or why to wait.

        The explicit ``--gain``; else the SerialEM mdoc's ``GainReference`` when found; else the
        newest gain file in the movie's folder or the nearest folder above it (up to the root).
        """
        if self.options.gain is not None:
            return str(self.options.gain), ""
        gains = self.gains
        if not gains:
            return None, ""
        named = meta.gain_reference if meta is not None else None
        folder = os.path.dirname(movie)
        while True:
            here = [g for g in gains if os.path.dirname(g) == folder]
            if named:
                here = [g for g in here if os.path.basename(g) == named] or here
            if here:
                return max(here, key=lambda g: (self.open[g].mtime_ns if g in self.open else 0, g)), ""
            if folder == self.root or len(folder) <= len(self.root):
                return None, ""
            folder = os.path.dirname(folder)

    def _norm(self, gain: str, session: m.SessionData):
        """The NormImageData of a gain file (registered on first use) and its shape; None while it waits."""
        row = self.open.get(gain)
        if row is None and gain in self.files:
            row = WatchedFile.objects.get(pk=self.files[gain][0])
        if row is not None and row.state == _State.REGISTERED:
            return m.NormImageData.objects.get(pk=row.exposure_id), tuple(row.details["shape"])
        if row is not None and not (row.state == _State.WAITING and row.reason == "ready"):
            return None, f"waiting for gain reference {gain} ({row.state}: {row.reason})"
        if row is None:  # the explicit --gain, outside the watched folders: read once per modification
            st = _stat(gain)
            if st is None:
                raise InputMissing("the gain reference given does not exist", step="ingest", path=gain)
            if self._explicit_gain is not None and self._explicit_gain[0] == st.st_mtime_ns:
                return self._explicit_gain[1]
        reference = reference_session_ensure(session, reference_id=self.row.reference_session_id,
                                             processed=self.processed)
        if self.row.reference_session_id != reference.pk:
            self.row.reference_session_id = reference.pk
            self.row.save(update_fields=["reference_session_id", "updated_at"])
        link = f"{path_digest(gain)[:8]}_{os.path.basename(gain)}"
        norm, shape = gain_register(gain, session=session, reference=reference, processed=self.processed,
                                    camera=None, link_name=link)
        if row is not None:
            self._state(row, _State.REGISTERED, "", exposure_id=norm.pk, registered_at=timezone.now(),
                        details={"shape": list(shape)})
            self.open.pop(gain, None)
        else:
            self._explicit_gain = (st.st_mtime_ns, (norm, shape))
        return norm, shape

    def _orientation(self, gain: str, movie: str) -> tuple[int, int]:
        """The MotionCor (rotate, flip) of a gain: given, or found once from a movie and kept with the gain."""
        overrides = self.options.overrides
        if not self.options.gain_orientation_auto:
            return overrides.gain_rotate, overrides.gain_flip
        if gain not in self._orientations:
            row = WatchedFile.objects.filter(pk=self.files[gain][0]).first() if gain in self.files else None
            known = (row.details or {}).get("orientation") if row is not None else None
            if known is None:
                with open_movie(movie) as reader:
                    frame_sum = reader.read_frames().sum(axis=0, dtype=np.float64)
                known, scores = gain_orientation_detect(load_gain(gain, convention="multiply"), frame_sum,
                                                        path=gain)
                logger.info("session=%s gain %s: orientation rotate %d flip %d found from %s (correlations %s)",
                            self.row.session_name, gain, known[0], known[1], movie, scores)
                if row is not None:
                    row.details = {**(row.details or {}), "orientation": list(known), "orientation_scores": scores}
                    row.save(update_fields=["details", "updated_at"])
            self._orientations[gain] = (int(known[0]), int(known[1]))
        return self._orientations[gain]

    def _register(self, row: WatchedFile, meta: AcquisitionMetadata | None, report: PassReport) -> None:
        header = movie_header_read(row.path)
        session = self.leginon_session()
        norm, gain_shape = None, None
        gain, _ = self._gain_for(row.path, meta)
        if gain is not None:
            norm, gain_shape = self._norm(gain, session)
            if norm is None:
                self._state(row, _State.WAITING, gain_shape)
                return
            rotate, flip = self._orientation(gain, row.path)
            gain_shape_check(gain_shape, header.shape, rotate=rotate, flip=flip, path=gain)
        filename = unique_filename(leginon_filename(row.path), row.path, self.taken)
        xml = self._epu_xml(row.path)
        integrated = xml[:-4] + ".mrc" if xml else None
        exposure_id, details = movie_register(
            session=session, path=row.path, filename=filename, header=header, meta=meta,
            overrides=self.options.overrides, processed=self.processed, norm=norm, integrated_image=integrated,
            cache=self._rows_cache, gain_orientation=self._orientations.get(gain) if gain else None)
        meta_path = meta.path if meta is not None else ""
        meta_st = _stat(meta_path) if meta_path else None
        if meta_st is not None:
            details["metadata_mtime_ns"] = meta_st.st_mtime_ns
        self._state(row, _State.REGISTERED, "", filename=filename, exposure_id=exposure_id,
                    registered_at=timezone.now(), details=details, n_frames=header.n_frames,
                    metadata_path=meta_path, grid_square=(meta.grid_square or "") if meta else "",
                    foil_hole=(meta.foil_hole or "") if meta else "", error_kind="")
        self.open.pop(row.path, None)
        self.taken.add(filename)
        report.registered += 1
        logger.info("session=%s exposure=%s registered as %s from %s (%s)", self.row.session_name, filename,
                    exposure_id, row.path, details["metadata"])


class Watcher:
    """Watch a root (one session folder, or a USC root of many) and register what appears."""

    def __init__(self, root: str | os.PathLike[str], options: WatchOptions) -> None:
        self.root = Path(root).absolute()
        if not self.root.is_dir():
            raise InputMissing("the folder to watch does not exist", step="ingest", path=str(self.root))
        self.options = options
        self.sessions: dict[str, SessionWatch] = {}

    def discover(self) -> None:
        for folder in sessions_find(self.root, layout=self.options.layout, session_name=self.options.session_name,
                                    project=self.options.project, user=self.options.user,
                                    processed=self.options.processed):
            key = str(folder.raw)
            if key not in self.sessions:
                watch = SessionWatch(folder, self.options)
                watch.leginon_session()
                self.sessions[key] = watch
                logger.info("session=%s found at %s; process it with: semc loop --session %s --preset %s "
                            "--rundir %s", watch.row.session_name, key, watch.row.session_name,
                            self.options.overrides.preset_name, Path(watch.processed) / "ddstack1")

    def run_pass(self) -> PassReport:
        """Discover sessions, scan each incrementally, check and register what waits."""
        started = time.perf_counter()
        report = PassReport()
        self.discover()
        for watch in self.sessions.values():
            part = PassReport()
            watch.scan(part)
            watch.check(part)
            report.add(part)
        report.sessions = len(self.sessions)
        report.seconds = time.perf_counter() - started
        return report

    def run(self, *, once: bool = False, interval_s: float = 5.0, idle_exit_s: float | None = None,
            stop: threading.Event | None = None) -> PassReport:
        """Pass after pass until stopped; ``once``: one pass; ``idle_exit_s``: stop when nothing has
        been found or registered and nothing waits for that long. Returns the totals."""
        stop = stop or threading.Event()
        totals = PassReport()
        last_activity = time.monotonic()
        while True:
            report = self.run_pass()
            totals.add(report)
            totals.sessions = report.sessions
            if report.new_files or report.registered or report.waiting:
                last_activity = time.monotonic()
            if report.registered or report.new_files:
                logger.info("pass: %d new, %d registered, %d waiting, %d broken, %d failed (%.3f s, %d dirs listed "
                            "of %d)", report.new_files, report.registered, report.waiting, report.broken,
                            report.failed, report.seconds, report.directories_listed, report.directories_checked)
            if once or stop.is_set():
                totals.waiting, totals.broken, totals.failed = report.waiting, report.broken, report.failed
                return totals
            if idle_exit_s is not None and time.monotonic() - last_activity >= idle_exit_s:
                totals.waiting, totals.broken, totals.failed = report.waiting, report.broken, report.failed
                return totals
            close_old_connections()  # a quiet pass queries nothing: never hold a connection a server may drop
            stop.wait(interval_s)


def session_counts(session_id: int) -> dict[str, int]:
    """The USC service's status counts of a watched Leginon session, and the watcher's own.

    ``raw_files``: movies seen (vanished ones excepted); ``processed_files``: exposures done in the
    last step of the session's newest processing run; ``failed_jobs``: exposures failed or
    quarantined in that run and not done since, plus movies the watcher found broken or could not
    register; and one count per watcher state (``waiting``, ``registered``, ``broken``, ``failed``,
    ``vanished``).
    """
    from django.db.models import Count

    from semc.models.semc import ExposureStep, ProcessingRun, StepState

    rows = (WatchedFile.objects.filter(session__leginon_session_id=session_id, kind=WatchedFile.Kind.MOVIE)
            .values_list("state").annotate(n=Count("id")))
    counts = {state: 0 for state in _State.values}
    counts.update(dict(rows))
    counts["raw_files"] = sum(n for state, n in counts.items() if state != _State.VANISHED)
    done: set[int] = set()
    bad: set[int] = set()
    run = ProcessingRun.objects.filter(session_id=session_id).order_by("-created_at", "-id").first()
    if run is not None and run.steps:
        lines = ExposureStep.objects.filter(run=run)
        done = set(lines.filter(step=run.steps[-1], state=StepState.DONE).values_list("exposure_id", flat=True))
        bad = set(lines.filter(state__in=[StepState.FAILED, StepState.QUARANTINED])
                  .values_list("exposure_id", flat=True)) - done
    counts["processed_files"] = len(done)
    counts["failed_jobs"] = len(bad) + counts[_State.BROKEN] + counts[_State.FAILED]
    return counts
