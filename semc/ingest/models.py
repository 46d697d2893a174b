"""The watcher's registry (SEMC's own database): watched session folders, every file seen, and the
directory modification times of the last scan.

A file is registered at most once: its row is unique per (session, path) and keeps the Leginon
id it was registered as; the Leginon rows themselves are created get-or-create on
(session, filename), so a crash between the two writes registers nothing twice on restart.
Paths are stored in full (``TextField``) and made unique through their SHA-1 (MySQL cannot index
a long text column).
"""

from __future__ import annotations

import hashlib

from django.db import models

from semc.models.semc import TimestampedModel

__all__ = ["WatchedDirectory", "WatchedFile", "WatchedSession", "path_digest"]


def path_digest(path: str) -> str:
    """The SHA-1 hex digest of a path (the unique key of a path column)."""
    return hashlib.sha1(path.encode("utf-8", "surrogateescape")).hexdigest()


class WatchedSession(TimestampedModel):
    """A session folder being watched, and the Leginon session its exposures go to."""

    root = models.TextField(help_text="absolute folder holding the session's raw files")
    root_digest = models.CharField(max_length=40, unique=True)
    layout = models.CharField(max_length=16,
                              help_text="session (one folder) or usc (<project>/sessions/<user>/<session>/raw)")
    session_name = models.CharField(max_length=255, db_index=True, help_text="SessionData.name")
    project_name = models.CharField(max_length=255, blank=True)
    user_name = models.CharField(max_length=255, blank=True)
    processed_dir = models.TextField(help_text="where SEMC writes for this session (image path, frame links, runs)")
    leginon_session_id = models.IntegerField(null=True, blank=True, help_text="SessionData.DEF_id")
    reference_session_id = models.IntegerField(null=True, blank=True, help_text="hidden reference SessionData.DEF_id")

    class Meta:
        verbose_name = "watched session"

    def __str__(self) -> str:
        return f"{self.session_name} ({self.root})"


class WatchedDirectory(models.Model):
    """A directory's modification time when it was last listed (unchanged: not listed again)."""

    session = models.ForeignKey(WatchedSession, on_delete=models.CASCADE, related_name="directories")
    path = models.TextField()
    path_digest = models.CharField(max_length=40)
    mtime_ns = models.BigIntegerField()
    listed_at = models.FloatField(help_text="epoch seconds")

    class Meta:
        verbose_name = "watched directory"
        constraints = [models.UniqueConstraint(fields=["session", "path_digest"], name="semc_ingest_dir_unique")]


class WatchedFile(TimestampedModel):
    """A movie or gain reference found in a watched session, and what became of it."""

    class Kind(models.TextChoices):
        MOVIE = "movie"
        GAIN = "gain"

    class State(models.TextChoices):
        WAITING = "waiting", "waiting (incomplete, changing, or its metadata not there yet)"
        REGISTERED = "registered"
        BROKEN = "broken", "broken (incomplete and unchanged for the broken-after time)"
        FAILED = "failed", "failed (cannot be registered: unreadable or metadata missing)"
        VANISHED = "vanished", "vanished before it was registered"

    session = models.ForeignKey(WatchedSession, on_delete=models.CASCADE, related_name="files")
    path = models.TextField()
    path_digest = models.CharField(max_length=40)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    state = models.CharField(max_length=12, choices=State.choices, default=State.WAITING, db_index=True)
    size_bytes = models.BigIntegerField(default=0)
    mtime_ns = models.BigIntegerField(default=0)
    changed_at = models.FloatField(help_text="epoch seconds when size or mtime last changed (as seen)")
    ready_since = models.FloatField(null=True, blank=True, help_text="epoch seconds since complete and stable")
    reason = models.TextField(blank=True, help_text="why it waits, or the error")
    error_kind = models.CharField(max_length=64, blank=True)
    filename = models.CharField(max_length=255, blank=True, help_text="Leginon filename (movies)")
    exposure_id = models.IntegerField(null=True, blank=True,
                                      help_text="AcquisitionImageData.DEF_id (movie) or NormImageData.DEF_id (gain)")
    metadata_path = models.TextField(blank=True)
    grid_square = models.CharField(max_length=64, blank=True)
    foil_hole = models.CharField(max_length=64, blank=True)
    n_frames = models.IntegerField(null=True, blank=True)
    registered_at = models.DateTimeField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True, help_text="values registered (pixel size, dose, ...)")

    class Meta:
        verbose_name = "watched file"
        constraints = [models.UniqueConstraint(fields=["session", "path_digest"], name="semc_ingest_file_unique")]
        indexes = [models.Index(fields=["session", "kind", "state"], name="semc_ingest_file_state")]

    def __str__(self) -> str:
        return f"{self.path} ({self.state})"
