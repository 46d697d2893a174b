"""The daemon with classic Appion's image selection and per-exposure rules.

`ClassicController` is the daemon's `Controller` with two classic additions: the image filters
of `ImageSelection` (``--mrclist``, ``--best-images``, id bounds) act like rejections, and an
``adjust`` function may change an exposure's inputs and configuration just before submission
(``--totaldose``, ``--ddnframe``, classic CTF search ranges centred on each image's defocus). An
adjustment that fails becomes that exposure's failed attempt, recorded like any other.
`classic_loop_run` runs it as `semc.loop.loop_run` runs the plain controller; a dry run
(``--no-commit``) goes to `semc.classic.dryrun`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from semc.base.errors import ProcessingError
from semc.base.exposure import ExposureInputs
from semc.classic.remote import error_raise
from semc.classic.selection import ImageSelection, excluded_ids
from semc.loop import Controller, LoopParams
from semc.pipeline import PipelineConfig

__all__ = ["Adjust", "ClassicController", "adjusted_submit", "classic_loop_run"]

logger = logging.getLogger(__name__)

#: (inputs, config) -> (inputs, config), run in the controller just before an exposure is submitted
Adjust = Callable[[ExposureInputs, PipelineConfig], tuple[ExposureInputs, PipelineConfig]]


def adjusted_submit(client, adjust: Adjust | None, fn, inputs, config, *args, **kwargs):
    """``client.submit(fn, inputs, config, ...)`` after ``adjust``; a failed adjustment is submitted as a
    task that raises it, so the controller records it as that exposure's failed attempt."""
    if adjust is not None:
        try:
            inputs, config = adjust(inputs, config)
        except ProcessingError as exc:
            return client.submit(error_raise, exc, key=kwargs.get("key"), pure=False)
    return client.submit(fn, inputs, config, *args, **kwargs)


class _AdjustingClient:
    def __init__(self, client, adjust: Adjust) -> None:
        self._client, self._adjust = client, adjust

    def submit(self, fn, inputs, config, *args, **kwargs):
        return adjusted_submit(self._client, self._adjust, fn, inputs, config, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


class _AdjustingCluster:
    """The cluster handle, with submissions going through ``adjust``."""

    def __init__(self, cluster, adjust: Adjust) -> None:
        self._cluster = cluster
        self.client = _AdjustingClient(cluster.client, adjust)

    def __getattr__(self, name):
        return getattr(self._cluster, name)


class ClassicController(Controller):
    """`Controller` plus classic image selection and per-exposure adjustment."""

    def __init__(self, params: LoopParams, cluster, *, selection: ImageSelection | None = None,
                 adjust: Adjust | None = None, **kwargs) -> None:
        super().__init__(params, _AdjustingCluster(cluster, adjust) if adjust else cluster, **kwargs)
        self.selection = selection or ImageSelection()

    def _rejected(self, ids) -> set[int]:
        return super()._rejected(ids) | excluded_ids(ids, self.selection)


def classic_loop_run(params: LoopParams, *, selection: ImageSelection | None = None,
                     adjust: Adjust | None = None, cluster_backend: str | None = None,
                     n_workers: int | None = None) -> int:
    """Run a classic script's controller until finished or stopped (exit status 0), or its dry run."""
    from semc.classic.dryrun import dry_run
    from semc.loop import loop_run

    return loop_run(params, cluster_backend=cluster_backend, n_workers=n_workers,
                    controller_factory=lambda p, c: ClassicController(p, c, selection=selection, adjust=adjust),
                    dry_run=lambda p, c: dry_run(p, c, selection=selection, adjust=adjust))
