"""One controller per run directory: a non-blocking lock that records its owner (R9).

The lock is an ``flock`` on ``<rundir>/.semc.lock``; the file holds the owner's PID, host,
Slurm job id and start time as JSON. The kernel releases an ``flock`` when its holder dies,
so a lock left by a crashed daemon is stale by construction and is taken over (and the
takeover is logged with the previous owner). A live owner makes a second daemon fail fast
with a message that names it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path

from semc.base.errors import ConfigurationError

__all__ = ["RunDirLock", "RunDirLocked"]

logger = logging.getLogger(__name__)


class RunDirLocked(ConfigurationError):
    """Another live controller holds the run directory."""


class RunDirLock:
    """Context manager holding the run directory's lock for the life of the controller."""

    FILENAME = ".semc.lock"

    def __init__(self, rundir: str | os.PathLike) -> None:
        self.rundir = Path(rundir)
        self.path = self.rundir / self.FILENAME
        self._fd: int | None = None
        self.previous_owner: dict | None = None

    def owner(self) -> dict | None:
        """The owner recorded in the lock file (None if unreadable)."""
        try:
            return json.loads(self.path.read_text() or "null")
        except (OSError, ValueError):
            return None

    def acquire(self) -> None:
        self.rundir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = self.owner() or {}
            raise RunDirLocked(
                f"run directory is in use by another SEMC controller (pid {owner.get('pid')} on "
                f"{owner.get('host')}, Slurm job {owner.get('slurm_job_id') or '-'}, since "
                f"{owner.get('started')}); stop it first or choose another --rundir",
                path=str(self.rundir), key="rundir",
            ) from None
        self.previous_owner = self.owner()
        if self.previous_owner:
            logger.warning("taking over a stale lock of %s (previous owner %s)", self.rundir, self.previous_owner)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)  # an empty file: the next owner sees a clean, not a stale, lock
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunDirLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
