"""Which files are movies and gain references, what they are called in Leginon, where their
metadata is, and where a layout's sessions are.

Layouts:

- ``session``: ROOT is one session folder (any depth below it is scanned);
- ``usc``: ROOT holds ``<project>/sessions/<user>/<session>/raw`` folders, one session each (the
  USC CryoEM service's layout); results go to ``<project>/sessions/<user>/<session>/processed``.

Movie names: EPU's ``FoilHole_<hole>_Data_<a>_<b>_<date>_<time>_fractions.(tiff|mrc)`` and
``..._EER.eer`` (EPU's integrated ``FoilHole_*.mrc`` images, grid-square and atlas images are not
movies), SerialEM's and plain names (``*.tif``, ``*.tiff``, ``*.mrc``, ``*.mrcs``, ``*.eer``).
Gain references: ``*.gain``, ``*gain*.mrc|tif|tiff``, SerialEM's ``CountRef_*``/``SuperRef_*``.
Hidden and temporary names (``.x``, ``x.tmp``, ``x.part``) are never taken.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from semc.base.errors import InvalidParameters

__all__ = [
    "DEFAULT_EXCLUDES",
    "DEFAULT_GAIN_PATTERNS",
    "DEFAULT_MOVIE_PATTERNS",
    "LAYOUTS",
    "FilePatterns",
    "SessionFolder",
    "epu_metadata_path",
    "leginon_filename",
    "mdoc_candidates",
    "movie_kind",
    "safe_name",
    "sessions_find",
    "unique_filename",
]

LAYOUTS = ("session", "usc")
DEFAULT_MOVIE_PATTERNS = ("*.tif", "*.tiff", "*.mrc", "*.mrcs", "*.eer")
DEFAULT_GAIN_PATTERNS = ("*.gain", "*gain*.mrc", "*gain*.tif", "*gain*.tiff", "countref*.mrc", "countref*.tif",
                         "countref*.tiff", "superref*.mrc", "superref*.tif", "superref*.tiff")
DEFAULT_EXCLUDES = ("gridsquare_*", "atlas*", "tile_*", "*.jpg", "*.png", "*_thumbnail*")
_TEMPORARY = (".tmp", ".part", ".partial", ".filepart", ".crdownload", "~")
_EPU_MOVIE = re.compile(r"^(FoilHole_.+?)(_fractions|_EER)\.(tiff?|mrcs?|eer)$", re.IGNORECASE)
_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclass(frozen=True, slots=True)
class FilePatterns:
    """Case-insensitive glob patterns: movies, gain references, and names never taken."""

    movies: tuple[str, ...] = DEFAULT_MOVIE_PATTERNS
    gains: tuple[str, ...] = DEFAULT_GAIN_PATTERNS
    excludes: tuple[str, ...] = DEFAULT_EXCLUDES

    def __post_init__(self) -> None:
        if not self.movies:
            raise InvalidParameters("at least one movie pattern is needed", step="ingest")
        for pattern in (*self.movies, *self.gains, *self.excludes):
            if "/" in pattern or not pattern:
                raise InvalidParameters(f"a pattern matches file names, not paths: {pattern!r}", step="ingest")

    def kind(self, name: str) -> str | None:
        """``"movie"``, ``"gain"`` or None for a file name."""
        lower = name.lower()
        if lower.startswith((".", "~")) or lower.endswith(_TEMPORARY):
            return None
        if any(fnmatchcase(lower, p.lower()) for p in self.gains):
            return "gain"
        if any(fnmatchcase(lower, p.lower()) for p in self.excludes):
            return None
        if lower.startswith("foilhole_") and not _EPU_MOVIE.match(name):
            return None  # EPU's integrated image of the exposure, not its movie
        if any(fnmatchcase(lower, p.lower()) for p in self.movies):
            return "movie"
        return None


def movie_kind(path: str) -> str:
    """``mrc``, ``tiff`` or ``eer`` from a movie's name (its content is checked when it is read)."""
    lower = path.lower()
    if lower.endswith(".eer"):
        return "eer"
    if lower.endswith((".tif", ".tiff")):
        return "tiff"
    return "mrc"


def safe_name(text: str) -> str:
    """A name usable as a Leginon filename or session name: letters, digits and ``._+-`` only."""
    cleaned = _SAFE.sub("_", text).strip("._")
    if not cleaned:
        raise InvalidParameters(f"no usable name in {text!r}", step="ingest")
    return cleaned


def leginon_filename(path: str) -> str:
    """The Leginon ``filename`` of a movie: its name without the extension, EPU's ``_fractions``/``_EER``
    and Leginon's ``.frames``, made safe (see :func:`safe_name`)."""
    name = os.path.basename(path)
    epu = _EPU_MOVIE.match(name)
    if epu:
        return safe_name(epu.group(1))
    stem = name.rsplit(".", 1)[0]
    stem = stem.removesuffix(".frames")
    return safe_name(stem)


def unique_filename(name: str, path: str, taken: set[str]) -> str:
    """``name``, or, when another movie of the session already has it, ``name_<8 hex of the path>``."""
    if name not in taken:
        return name
    return f"{name}_{hashlib.sha1(path.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


def epu_metadata_path(movie: str) -> str | None:
    """The EPU XML of an EPU movie (``FoilHole_..._fractions.tiff`` -> ``FoilHole_....xml``), or None."""
    name = os.path.basename(movie)
    epu = _EPU_MOVIE.match(name)
    return os.path.join(os.path.dirname(movie), f"{epu.group(1)}.xml") if epu else None


def mdoc_candidates(movie: str) -> tuple[str, str]:
    """SerialEM's per-movie mdoc names: ``<movie>.mdoc`` and ``<stem>.mdoc``."""
    return f"{movie}.mdoc", f"{os.path.splitext(movie)[0]}.mdoc"


@dataclass(frozen=True, slots=True)
class SessionFolder:
    """A session folder found under the watched root."""

    raw: Path  # the folder whose files are ingested
    name: str  # Leginon session name (safe)
    project: str | None
    user: str | None
    processed: Path


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir() and not path.name.startswith(".")
    except OSError:
        return False


def sessions_find(root: Path, *, layout: str, session_name: str | None = None, project: str | None = None,
                  user: str | None = None, processed: Path | None = None) -> list[SessionFolder]:
    """The session folders of a root in a layout.

    ``session``: ROOT itself; its name is ``session_name`` or the folder's name (its parent's when
    the folder is called ``raw``); results in ``processed`` (default: the sibling ``processed`` of a
    ``raw`` folder, else ``ROOT/processed``). ``usc``: every ``<project>/sessions/<user>/<session>/raw``.
    """
    root = Path(root).absolute()
    if layout not in LAYOUTS:
        raise InvalidParameters(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}", step="ingest")
    if layout == "session":
        own = root.parent if root.name == "raw" else root
        out = processed or (root.parent / "processed" if root.name == "raw" else root / "processed")
        return [SessionFolder(raw=root, name=safe_name(session_name or own.name), project=project, user=user,
                              processed=Path(out).absolute())]
    found = []
    for project_dir in sorted(p for p in root.iterdir() if _is_dir(p)):
        sessions = project_dir / "sessions"
        if not _is_dir(sessions):
            continue
        for user_dir in sorted(p for p in sessions.iterdir() if _is_dir(p)):
            for session_dir in sorted(p for p in user_dir.iterdir() if _is_dir(p)):
                if _is_dir(session_dir / "raw"):
                    found.append(SessionFolder(raw=session_dir / "raw", name=safe_name(session_dir.name),
                                               project=project_dir.name, user=user_dir.name,
                                               processed=session_dir / "processed"))
    return found
