"""Executors: local processes, Dask, and Dask workers as SLURM/PBS batch jobs (dask-jobqueue)."""

from __future__ import annotations

import dask
import dask_jobqueue  # noqa: F401  (registers its default settings before the tests change them)
import pytest

from matbrain.common import executors
from matbrain.common.executors import batch_cluster, check_executor


def test_unknown_executor_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid: local, dask, slurm, pbs"):
        check_executor("ray")


def test_a_batch_executor_without_its_submit_command_says_where_to_run(monkeypatch):
    monkeypatch.setattr(executors.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="sbatch, which is not on this machine's PATH"):
        batch_cluster("slurm")


@pytest.mark.parametrize(("kind", "directive"), [("slurm", "#SBATCH -p normal"),
                                                 ("pbs", "#PBS -q normal")])  # fmt: skip
def test_batch_workers_are_submitted_with_dask_jobqueue_settings(monkeypatch, kind, directive):
    monkeypatch.setattr(executors.shutil, "which", lambda name: f"/usr/bin/{name}")
    settings = {
        f"jobqueue.{kind}.{k}": v
        for k, v in {"cores": 2, "memory": "4GB", "queue": "normal", "walltime": "02:00:00"}.items()
    }
    with dask.config.set(settings):
        cluster = batch_cluster(kind)
        try:
            script = cluster.job_script()  # what dask-jobqueue would submit; nothing is submitted
        finally:
            cluster.close()
    assert directive in script and "02:00:00" in script and "distributed.cli.dask_worker" in script


def test_a_missing_jobqueue_setting_is_named(monkeypatch):
    monkeypatch.setattr(executors.shutil, "which", lambda name: f"/usr/bin/{name}")
    with dask.config.set({"jobqueue.slurm.cores": None, "jobqueue.slurm.memory": None}):
        with pytest.raises(ValueError, match="jobqueue.yaml"):
            batch_cluster("slurm")
