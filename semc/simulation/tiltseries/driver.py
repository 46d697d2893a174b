"""Run a tilt-series simulation: child processes, one assembler and temporary folder each, one log file.

The driver splits the series round-robin over ``processes`` child processes
(``spawn`` start method). Each child builds its own assembler (its temporary
folder is ``<root>/tmp/worker-<n>``), calls ``reset_temp_dir()`` before every
series and ``close()`` at the end, and logs through one multiprocessing queue;
a listener in the parent writes every record to ``<root>/simulation.log``.
Series seeds come from the run seed and the series index only, so the output
does not depend on the number of processes. ``<root>/sim_metadata.json``
lists every series.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing as mp
import queue as queue_module
import traceback

from semc.base.errors import ConfigurationError, ProcessingError
from semc.simulation.tiltseries.assembler import assembler_create
from semc.simulation.tiltseries.config import TiltSeriesConfig
from semc.simulation.tiltseries.simulation import TiltSeriesSimulation
from semc.simulation.truth import json_write

logger = logging.getLogger(__name__)

__all__ = ["tiltseries_run", "series_simulate"]

_LOG_FORMAT = "%(asctime)s %(processName)s %(name)s %(levelname)s %(message)s"


def series_simulate(config: TiltSeriesConfig, index: int, assembler) -> dict:
    """Simulate series ``index`` with an existing assembler (in the calling process)."""
    assembler.reset_temp_dir()
    sim = TiltSeriesSimulation(config, index)
    if config.tem_simulator.get("executable"):
        from semc.simulation.tiltseries.tem_simulator import tem_simulator_render

        assembler.set_up_tiltseries(sim)
        return tem_simulator_render(sim, config.root / sim.name, temp_dir=assembler.temp_dir)
    assembler.set_up_tiltseries(sim)
    return sim.render(config.root / sim.name)


def _child(config: TiltSeriesConfig, worker: int, indices: list[int], queue, results) -> None:
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(queue)]
    root.setLevel(logging.INFO)
    assembler = assembler_create(config.assembler, options=config.assembler_options,
                                 temp_dir=config.root / "tmp" / f"worker-{worker}")
    try:
        for i in indices:
            try:
                record = series_simulate(config, i, assembler)
                results.put((i, "ok", {"name": record["name"], "stack": record["stack"]}))
            except Exception as exc:  # noqa: BLE001 - one failed series must not stop the others
                logging.getLogger(__name__).error("series %d failed: %s", i, exc)
                results.put((i, "failed", "".join(traceback.format_exception(exc))[-2000:]))
    finally:
        assembler.close()


def tiltseries_run(config: TiltSeriesConfig) -> list[dict]:
    """Simulate every series of ``config``; returns one summary per series (index order).

    Raises
    ------
    ConfigurationError
        The output root already holds a ``sim_metadata.json`` (refusing to overwrite).
    ProcessingError
        One or more series failed (their tracebacks are in the message and the log).
    """
    root = config.root
    if (root / "sim_metadata.json").exists():
        raise ConfigurationError("output root already holds a simulation", path=str(root), key="root")
    root.mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    queue, results = ctx.Queue(), ctx.Queue()
    handler = logging.FileHandler(root / "simulation.log")
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    listener = logging.handlers.QueueListener(queue, handler, respect_handler_level=False)
    listener.start()
    n_proc = min(config.processes, config.n_series)
    procs = [ctx.Process(target=_child, name=f"sim-worker-{w}",
                         args=(config, w, list(range(w, config.n_series, n_proc)), queue, results))
             for w in range(n_proc)]
    try:
        for p in procs:
            p.start()
        outcome = _collect(results, procs, config.n_series)
        for p in procs:
            p.join()
    finally:
        listener.stop()
        handler.close()
        if (root / "tmp").is_dir() and not any((root / "tmp").iterdir()):
            (root / "tmp").rmdir()
    failed = {i: info for i, (status, info) in outcome.items() if status != "ok"}
    summaries = [outcome[i][1] if i not in failed else {"failed": failed[i]} for i in range(config.n_series)]
    json_write(root / "sim_metadata.json", {"config": _config_dict(config), "series": summaries})
    if failed:
        raise ProcessingError(f"{len(failed)} tilt series failed: " + "; ".join(
            f"#{i}: {tb.strip().splitlines()[-1]}" for i, tb in failed.items()), step="simulation", path=str(root))
    logger.info("simulated %d tilt series under %s", config.n_series, root)
    return summaries


def _collect(results, procs, n: int) -> dict:
    """Results by series index; a series whose process died without answering is marked failed."""
    outcome: dict = {}
    quiet = 0
    while len(outcome) < n and quiet < 3:
        try:
            i, status, info = results.get(timeout=1.0)
            outcome[i] = (status, info)
        except queue_module.Empty:
            quiet = quiet + 1 if not any(p.is_alive() for p in procs) else 0
    for i in range(n):
        outcome.setdefault(i, ("failed", "worker process died without a result"))
    return outcome


def _config_dict(config: TiltSeriesConfig) -> dict:
    from dataclasses import asdict

    data = asdict(config)
    data["root"] = str(config.root)
    return data
