"""Dask cluster backends, built once from Dask's configuration (namespace ``semc.cluster``).

* ``local``: a :class:`distributed.LocalCluster` sized to the machine (the embedded default);
* ``slurm``: a :class:`dask_jobqueue.SLURMCluster` with ``adapt(minimum, maximum)``: one Slurm
  job per worker, one task per job, whole cores (R2), GPUs through ``--gres`` and the Dask
  resource ``GPU``; scales up with the backlog and down to zero when idle (R3);
* ``address``: an existing scheduler.

:func:`cluster_open` returns a :class:`ClusterHandle`; closing it closes the client and the
cluster, so no Slurm job outlives the daemon.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import dask.config
import yaml
from distributed import Client, LocalCluster

from semc.base.errors import ConfigurationError
from semc.base.parallel import available_cpus

__all__ = ["ClusterHandle", "cluster_open", "cluster_config", "slurm_cluster_kwargs", "BACKENDS"]

logger = logging.getLogger(__name__)
BACKENDS = ("local", "slurm", "address")
_DEFAULTS = Path(__file__).with_name("semc.yaml")


def _defaults_load() -> None:
    with _DEFAULTS.open() as handle:
        dask.config.update_defaults(yaml.safe_load(handle))


_defaults_load()


def cluster_config() -> dict[str, Any]:
    """The effective ``semc.cluster`` configuration (defaults merged with the user's Dask config)."""
    return dask.config.get("semc.cluster")


@dataclass
class ClusterHandle:
    """A client and the cluster behind it (None for an external scheduler)."""

    backend: str
    client: Client
    cluster: Any = None
    adaptive: Any = field(default=None, repr=False)

    @property
    def dashboard_link(self) -> str:
        return self.client.dashboard_link

    @property
    def gpu_resources(self) -> dict[str, int]:
        gpus = int(cluster_config()["slurm"]["gpus"] or 0) if self.backend == "slurm" else 0
        return {"GPU": 1} if gpus else {}

    def close(self) -> None:
        """Close the client and the cluster (cancels every Slurm job of this cluster)."""
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()

    def __enter__(self) -> "ClusterHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def slurm_cluster_kwargs(config: dict[str, Any], *, rundir: Path | None = None) -> dict[str, Any]:
    """Keyword arguments for ``SLURMCluster`` from the ``semc.cluster.slurm`` configuration (pure)."""
    slurm = config["slurm"]
    cores = int(slurm["cores"])
    if cores < 1:
        raise ConfigurationError("semc.cluster.slurm.cores must be >= 1", key="semc.cluster.slurm.cores")
    gpus = int(slurm.get("gpus") or 0)
    directives = list(slurm.get("job_extra_directives") or [])
    worker_args: list[str] = []
    if gpus:
        directives.append(f"--gres=gpu:{gpus}")
        worker_args += ["--resources", f"GPU={gpus}"]
    kwargs: dict[str, Any] = {
        "cores": cores,
        "processes": int(slurm["processes"]),
        "memory": slurm["memory"],
        "walltime": slurm["walltime"],
        "queue": slurm.get("queue"),
        "account": slurm.get("account"),
        "job_extra_directives": directives,
        "job_script_prologue": list(slurm.get("job_script_prologue") or []),
        "worker_extra_args": worker_args,
        "log_directory": slurm.get("log_directory") or (str(rundir / "dask-logs") if rundir else None),
        "local_directory": slurm.get("local_directory"),
        "scheduler_options": {"dashboard_address": ":0"},
    }
    if slurm.get("interface"):
        kwargs["interface"] = slurm["interface"]
        kwargs["scheduler_options"]["interface"] = slurm["interface"]
    return {k: v for k, v in kwargs.items() if v is not None}


def cluster_open(backend: str | None = None, *, address: str | None = None, rundir: Path | None = None,
                 n_workers: int | None = None) -> ClusterHandle:
    """Build the configured cluster once and connect a client to it.

    ``backend`` (local, slurm, address, or a ``tcp://`` address) overrides the configuration.
    """
    config = cluster_config()
    backend = backend or config["backend"]
    if backend not in BACKENDS and "://" in backend:
        backend, address = "address", backend
    if backend not in BACKENDS:
        raise ConfigurationError(f"unknown cluster backend {backend!r} (use {', '.join(BACKENDS)} or an address)",
                                 key="semc.cluster.backend")
    distributed = dask.config.get("semc.distributed")
    dask.config.set({"distributed.deploy.lost-worker-timeout": distributed["lost_worker_timeout"],
                     "distributed.scheduler.unknown-task-duration": distributed["unknown_task_duration"]})
    if backend == "address":
        address = address or config.get("address")
        if not address:
            raise ConfigurationError("backend 'address' needs semc.cluster.address", key="semc.cluster.address")
        return ClusterHandle("address", Client(address))
    if backend == "local":
        local = config["local"]
        cluster = LocalCluster(n_workers=n_workers or local.get("n_workers") or available_cpus(),
                               threads_per_worker=int(local["threads_per_worker"]),
                               memory_limit=local["memory_limit"], dashboard_address=local["dashboard_address"],
                               processes=True)
        handle = ClusterHandle("local", Client(cluster), cluster)
    else:
        from dask_jobqueue import SLURMCluster

        cluster = SLURMCluster(**slurm_cluster_kwargs(config, rundir=rundir))
        adapt = config["adapt"]
        adaptive = cluster.adapt(minimum=int(adapt["minimum"]), maximum=int(adapt["maximum"]),
                                 wait_count=int(adapt["wait_count"]), interval=adapt["interval"],
                                 target_duration=adapt["target_duration"])
        handle = ClusterHandle("slurm", Client(cluster), cluster, adaptive)
        logger.info("Slurm job script:\n%s", cluster.job_script())
    logger.info("Dask cluster %s, dashboard %s", backend, handle.dashboard_link)
    return handle

