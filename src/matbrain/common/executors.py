"""Independent jobs (labelling, MD trajectories) on local processes or on a Dask cluster."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import shutil
import sys
from collections.abc import Callable, Sequence
from typing import Any

EXECUTORS = ("local", "dask", "slurm", "pbs")
# dask-jobqueue's cluster class and the command it submits worker jobs with
BATCH_SYSTEMS = {"slurm": ("SLURMCluster", "sbatch"), "pbs": ("PBSCluster", "qsub")}
log = logging.getLogger(__name__)


def check_executor(executor: str) -> None:
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; valid: {', '.join(EXECUTORS)}")


def batch_cluster(kind: str) -> Any:
    """A dask-jobqueue cluster on SLURM or PBS (not yet scaled). Its queue, account, cores, memory
    and walltime come from Dask's own configuration (``~/.config/dask/jobqueue.yaml`` or
    ``DASK_JOBQUEUE__SLURM__CORES``-style variables), as dask-jobqueue documents."""
    class_name, submit = BATCH_SYSTEMS[kind]
    if shutil.which(submit) is None:
        raise RuntimeError(
            f"the {kind} executor submits Dask workers with {submit}, which is not on this "
            f"machine's PATH: run on the cluster's login node, or use --executor dask with "
            "--scheduler tcp://host:port"
        )
    import dask_jobqueue

    try:
        return getattr(dask_jobqueue, class_name)()
    except ValueError as exc:  # dask-jobqueue's message names the missing setting
        raise ValueError(
            f"{kind} cluster: {exc} (set it in ~/.config/dask/jobqueue.yaml under "
            f"jobqueue: {kind}:, see https://jobqueue.dask.org/en/latest/configuration.html)"
        ) from exc


def parallel_starmap(
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    workers: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
    echo: Callable[[str], None] = log.info,
) -> list[Any]:
    """``[fn(*job) for job in jobs]``, in order, run by:

    - ``local``: in this process (``workers`` ≤ 1) or a pool of ``workers`` spawned processes;
    - ``dask``: a Dask ``LocalCluster`` of ``workers`` processes, or the running scheduler at
      ``scheduler`` (``tcp://host:port``; files named in the jobs must then be on a shared file
      system);
    - ``slurm`` / ``pbs``: ``workers`` batch jobs, each one Dask worker, submitted by
      dask-jobqueue (:func:`batch_cluster`; shared file system as well).

    The dashboard link is echoed and, in a terminal, a progress bar shown; Dask reruns the job of
    a worker it loses."""
    check_executor(executor)
    if executor == "local":
        if workers <= 1 or len(jobs) <= 1:
            return [fn(*job) for job in jobs]
        with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            return pool.starmap(fn, jobs)
    try:
        from distributed import Client, LocalCluster, progress
    except ImportError as exc:  # pragma: no cover - installed by setup
        raise ImportError("the dask executor needs: pip install 'dask[distributed]'") from exc
    with contextlib.ExitStack() as stack:
        if executor in BATCH_SYSTEMS:
            cluster = stack.enter_context(batch_cluster(executor))
            cluster.scale(jobs=max(workers, 1))
            client = stack.enter_context(Client(cluster))
        elif scheduler is None:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=max(workers, 1),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",
                )  # fmt: skip
            )
            client = stack.enter_context(Client(cluster))
        else:
            client = stack.enter_context(Client(scheduler))
        echo(f"Dask dashboard: {client.dashboard_link}")
        futures = [client.submit(fn, *job, pure=False) for job in jobs]
        if sys.stdout.isatty():  # a text bar in a terminal; in a log file it would be noise
            progress(futures)
        return client.gather(futures)
