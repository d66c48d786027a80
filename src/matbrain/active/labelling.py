"""Label pending structures with an oracle, in parallel worker processes.

Each worker leases one row at a time from the store and renews the lease while its oracle runs,
so workers never label the same structure. A failed calculation marks its row failed with the
reason and the worker goes on. The row of a worker that died goes back to pending once its lease
has run out (and is retried, up to the store's attempt limit); a live worker's row is never taken.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from matbrain.active.oracles import OracleError, make_oracle
from matbrain.active.store import LEASE_S, LabelStore, new_worker_id
from matbrain.common.executors import check_executor, parallel_starmap

log = logging.getLogger(__name__)


@dataclass
class LabelReport:
    completed: int = 0
    failed: int = 0
    requeued: int = 0


def _work(
    url: str, oracle_name: str, settings: dict[str, Any], limit: int | None, lease_s: float
) -> tuple[int, int]:
    store = LabelStore(url)
    oracle = make_oracle(oracle_name, settings)
    info = oracle.describe()
    done = failed = 0
    worker = new_worker_id()
    while limit is None or done + failed < limit:
        claimed = store.claim(worker, lease_s)
        if claimed is None:
            break
        try:
            with store.keep_lease(claimed, lease_s):
                labels = oracle.label(claimed.atoms)
        except (KeyboardInterrupt, SystemExit):
            with contextlib.suppress(Exception):  # stopped on purpose: the row is free at once
                store.release(claimed.id, worker)
            raise
        except OracleError as exc:
            store.fail(claimed.id, str(exc), info, worker=worker)
            failed += 1
            log.warning("row %d failed: %s", claimed.id, exc)
            continue
        store.complete(claimed.id, labels, info, worker=worker)
        done += 1
    return done, failed


def label_pending(
    url: str,
    oracle: str = "gpaw",
    settings: dict[str, Any] | None = None,
    workers: int = 1,
    limit_per_worker: int | None = None,
    lease_s: float = LEASE_S,
    executor: str = "local",
    scheduler: str | None = None,
    echo: Callable[[str], None] = log.info,
) -> LabelReport:
    """Label every pending row of the store at ``url`` with ``oracle``; each claim is a lease
    of ``lease_s`` seconds, renewed while the oracle runs.

    ``executor``: ``local`` (worker processes on this machine), ``dask`` (``workers`` labelling
    jobs on a ``LocalCluster`` of that many processes, or on the running scheduler at
    ``scheduler``, ``tcp://host:port``), or ``slurm`` / ``pbs`` (``workers`` Dask workers
    submitted as batch jobs by dask-jobqueue, configured in Dask's jobqueue settings).
    Workers claim rows from the store, so a lost Dask worker loses only the row it held, which
    is retried when its lease runs out."""
    check_executor(executor)  # before anything is touched
    make_oracle(oracle, settings)  # bad names or settings fail here, before any worker starts
    report = LabelReport(requeued=LabelStore(url).release_expired())
    if report.requeued:
        log.info("%d structures whose worker stopped are pending again", report.requeued)
    args = (url, oracle, settings or {}, limit_per_worker, lease_s)
    # one labelling job per worker; each claims rows until none is pending
    results = parallel_starmap(_work, [args] * max(workers, 1), workers, executor, scheduler, echo)
    report.completed = sum(r[0] for r in results)
    report.failed = sum(r[1] for r in results)
    return report
