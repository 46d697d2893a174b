"""Cluster backends: the Slurm job script follows the configuration (R2), a LocalCluster runs work,
and on a real single-node Slurm adapt(0, 2) starts jobs for a backlog and leaves none behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import dask
import pytest

from semc.base.errors import ConfigurationError
from semc.cluster import cluster_config, cluster_open, slurm_cluster_kwargs


def test_slurm_kwargs_request_whole_cores_one_task_and_gpus_from_config():
    config = cluster_config()
    with dask.config.set({"semc.cluster.slurm.gpus": 1, "semc.cluster.slurm.cores": 4,
                          "semc.cluster.slurm.queue": "gpu", "semc.cluster.slurm.memory": "32GB"}):
        kwargs = slurm_cluster_kwargs(cluster_config())
    assert kwargs["cores"] == 4 and kwargs["processes"] == 1 and kwargs["queue"] == "gpu"
    assert "--gres=gpu:1" in kwargs["job_extra_directives"]
    assert kwargs["worker_extra_args"] == ["--resources", "GPU=1"]
    assert config["slurm"]["gpus"] == 0  # the override did not leak


def test_slurm_job_script_has_one_task_cores_memory_and_gres():
    from dask_jobqueue import SLURMCluster

    with dask.config.set({"semc.cluster.slurm.gpus": 1, "semc.cluster.slurm.queue": "debug"}):
        cluster = SLURMCluster(**slurm_cluster_kwargs(cluster_config()))
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -n 1" in script and "#SBATCH --cpus-per-task=2" in script
    assert "#SBATCH --gres=gpu:1" in script and "#SBATCH -p debug" in script
    assert "--resources GPU=1" in script


def test_zero_cores_is_a_configuration_error():
    with dask.config.set({"semc.cluster.slurm.cores": 0}), pytest.raises(ConfigurationError, match="cores"):
        slurm_cluster_kwargs(cluster_config())


def test_unknown_backend_is_refused():
    with pytest.raises(ConfigurationError, match="unknown cluster backend"):
        cluster_open("kubernetes")


def test_local_cluster_runs_work_and_closes():
    with cluster_open("local", n_workers=1) as handle:
        assert handle.client.submit(pow, 7, 2, key="square-7").result(timeout=60) == 49
        assert handle.dashboard_link.startswith("http://127.0.0.1:")
    assert handle.client.status == "closed"


def _slurm_jobs() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %T"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.strip()]


@pytest.mark.slurm
@pytest.mark.skipif(not (os.environ.get("SLURM_CONF") and shutil.which("sbatch")),
                    reason="no Slurm (run scripts/slurm-up.sh, which CI does)")
def test_real_slurm_adapts_up_for_a_backlog_and_down_to_zero(tmp_path):
    settings = {"semc.cluster.slurm.cores": 1, "semc.cluster.slurm.memory": "1GB",
                "semc.cluster.slurm.queue": os.environ.get("SEMC_TEST_SLURM_PARTITION", "debug"),
                "semc.cluster.slurm.interface": "lo", "semc.cluster.slurm.walltime": "00:10:00",
                "semc.cluster.adapt.maximum": 2, "semc.cluster.adapt.minimum": 0}
    with dask.config.set(settings):
        handle = cluster_open("slurm", rundir=tmp_path)
    try:
        assert _slurm_jobs() == []
        # standard-library functions: Slurm workers need not import the test modules
        futures = handle.client.map(time.sleep, [1.0] * 8, key=[f"sleep-{i}" for i in range(8)])
        seen = 0
        deadline = time.monotonic() + 90
        while not all(f.done() for f in futures) and time.monotonic() < deadline:
            seen = max(seen, len(_slurm_jobs()))
            time.sleep(0.3)
        assert [f.result() for f in futures] == [None] * 8 and all(f.status == "finished" for f in futures)
        assert 1 <= seen <= 2
        del futures  # release results, else the last worker is never retired (infra.md §1)
        deadline = time.monotonic() + 60
        while _slurm_jobs() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _slurm_jobs() == []
    finally:
        handle.close()
    assert _slurm_jobs() == []
    assert list((tmp_path / "dask-logs").glob("*.err")), "worker job logs go to <rundir>/dask-logs"
