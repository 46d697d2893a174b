"""The one exception tree of SEMC.

Every error carries the processing step, the exposure id and the path it is
about, and puts them in its message, so that a line in the daemon's log or in
the failure ledger says what failed where. Errors cross Dask (worker ->
controller), so every class here pickles and unpickles to an equal error.

Tree::

    ProcessingError
    ├── InputMissing            a file or row that should be there is not
    ├── InputNotReady           a file exists but is still being written (defer, do not fail)
    ├── CorruptInput            truncated, corrupt, wrong header, empty, unreadable
    ├── ExternalProgramFailed   an external program exited non-zero or died
    │   └── ExternalProgramTimeout
    ├── UnsupportedVersion      an external program of a version we cannot parse
    ├── LogParseError           program output that does not parse
    ├── InvalidParameters       a bad parameter value
    └── ConfigurationError      a bad or missing configuration value
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ProcessingError",
    "InputMissing",
    "InputNotReady",
    "CorruptInput",
    "ExternalProgramFailed",
    "ExternalProgramTimeout",
    "UnsupportedVersion",
    "LogParseError",
    "InvalidParameters",
    "ConfigurationError",
]


class ProcessingError(Exception):
    """Base of every SEMC error.

    Parameters
    ----------
    message
        What went wrong, in words an operator understands.
    step
        The processing step (``motioncorrection``, ``ctfestimation``, ``io``, ...).
    exposure_id
        ``AcquisitionImageData.DEF_id`` of the exposure, when known.
    path
        The file the error is about, when there is one.
    """

    #: extra attribute names carried by subclasses (kept through pickling)
    _extra: tuple[str, ...] = ()

    def __init__(
        self,
        message: str,
        *,
        step: str | None = None,
        exposure_id: int | None = None,
        path: str | None = None,
        **extra: Any,
    ) -> None:
        unknown = set(extra) - set(self._extra)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected keyword(s) {sorted(unknown)}")
        self.message = message
        self.step = step
        self.exposure_id = exposure_id
        self.path = None if path is None else str(path)
        for name in self._extra:
            setattr(self, name, extra.get(name))
        super().__init__(self._compose())

    def _context(self) -> list[str]:
        parts = []
        if self.step:
            parts.append(f"step={self.step}")
        if self.exposure_id is not None:
            parts.append(f"exposure={self.exposure_id}")
        if self.path:
            parts.append(f"path={self.path}")
        return parts

    def _compose(self) -> str:
        ctx = self._context()
        return f"{self.message} [{' '.join(ctx)}]" if ctx else self.message

    def with_context(self, **context: Any) -> "ProcessingError":
        """Return a copy with missing context (step, exposure_id, path) filled in."""
        kwargs = self._kwargs()
        for key, value in context.items():
            if kwargs.get(key) is None:
                kwargs[key] = value
        new = type(self)(self.message, **kwargs)
        new.__cause__ = self.__cause__
        return new

    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "step": self.step,
            "exposure_id": self.exposure_id,
            "path": self.path,
        }
        for name in self._extra:
            kwargs[name] = getattr(self, name)
        return kwargs

    def __reduce__(self):  # keyword-only constructor: pickle through a helper
        return (_rebuild, (type(self), self.message, self._kwargs()))

    def __eq__(self, other: object) -> bool:
        return (
            type(self) is type(other)
            and self.message == other.message  # type: ignore[attr-defined]
            and self._kwargs() == other._kwargs()  # type: ignore[attr-defined]
        )

    __hash__ = Exception.__hash__


def _rebuild(cls: type[ProcessingError], message: str, kwargs: dict[str, Any]) -> ProcessingError:
    return cls(message, **kwargs)


class InputMissing(ProcessingError):
    """A file, reference or database row that processing needs does not exist."""


class InputNotReady(ProcessingError):
    """A file exists but is not complete or not yet stable: defer, without spending an attempt."""


class CorruptInput(ProcessingError):
    """A file is truncated, corrupt, has a wrong header, is empty or cannot be read.

    ``frame`` names the frame (0-based) where decoding failed, when known.
    """

    _extra = ("frame",)

    def _context(self) -> list[str]:
        parts = super()._context()
        if getattr(self, "frame", None) is not None:
            parts.append(f"frame={self.frame}")
        return parts


class ExternalProgramFailed(ProcessingError):
    """An external program exited non-zero, was killed by a signal, or could not start.

    Carries ``program``, ``returncode`` (None if killed), ``signal`` (the signal
    number when killed), ``argv`` (the argument list), ``version`` and
    ``stderr_tail`` (the last lines of its error output), and ``log_path`` (where
    the raw output was kept).
    """

    _extra = ("program", "returncode", "signal", "argv", "version", "stderr_tail", "log_path")

    def _context(self) -> list[str]:
        parts = super()._context()
        if getattr(self, "program", None):
            parts.insert(0, f"program={self.program}")
        if getattr(self, "version", None):
            parts.append(f"version={self.version}")
        if getattr(self, "returncode", None) is not None:
            parts.append(f"exit={self.returncode}")
        if getattr(self, "signal", None) is not None:
            parts.append(f"signal={self.signal}")
        if getattr(self, "log_path", None):
            parts.append(f"log={self.log_path}")
        return parts

    def _compose(self) -> str:
        text = super()._compose()
        tail = getattr(self, "stderr_tail", None)
        if tail:
            text += "\n--- last lines of its output ---\n" + tail
        return text


class ExternalProgramTimeout(ExternalProgramFailed):
    """An external program ran past its time limit and was killed (with its process group)."""


class _ProgramError(ProcessingError):
    """An error about a program's version or output: names the program and its version."""

    _extra = ("program", "version")

    def _context(self) -> list[str]:
        parts = super()._context()
        if getattr(self, "program", None):
            parts.insert(0, f"program={self.program}")
        if getattr(self, "version", None):
            parts.append(f"version={self.version}")
        return parts


class UnsupportedVersion(_ProgramError):
    """An external program reports a version SEMC has no parser for."""


class LogParseError(_ProgramError):
    """Output of an external program (log, results file) that does not parse."""


class OutputError(ProcessingError):
    """An output file or folder cannot be written (missing folder, no permission, disk full)."""


class InvalidParameters(ProcessingError):
    """A parameter is out of range, of the wrong kind, or inconsistent with another."""


class ConfigurationError(ProcessingError):
    """A configuration value is missing or invalid.

    ``key`` names the setting and ``source`` where it was read (environment
    variable, file and line, default).
    """

    _extra = ("key", "source")

    def _context(self) -> list[str]:
        parts = super()._context()
        if getattr(self, "key", None):
            parts.insert(0, f"key={self.key}")
        if getattr(self, "source", None):
            parts.append(f"source={self.source}")
        return parts
