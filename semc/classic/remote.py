"""Functions the classic controller submits to workers besides the pipeline (no Django, no ORM)."""

from __future__ import annotations

__all__ = ["error_raise"]


def error_raise(error: BaseException) -> None:
    """A task that fails with ``error``: how an exposure whose submission could not be prepared is
    recorded as a failed attempt through the controller's ordinary path."""
    raise error
