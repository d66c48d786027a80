"""Label pending structures with an oracle, in parallel worker processes.

Each worker claims one row at a time from the store, so workers never label the same structure.
A failed calculation marks its row failed with the reason and the worker goes on. Rows left
running by a worker that died are put back to pending when labelling starts again.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from dataclasses import dataclass
from typing import Any

from matbrain.active.oracles import OracleError, make_oracle
from matbrain.active.store import LabelStore

log = logging.getLogger(__name__)


@dataclass
class LabelReport:
    completed: int = 0
    failed: int = 0
    requeued: int = 0


def _work(
    url: str, oracle_name: str, settings: dict[str, Any], limit: int | None
) -> tuple[int, int]:
    store = LabelStore(url)
    oracle = make_oracle(oracle_name, settings)
    info = oracle.describe()
    done = failed = 0
    worker = f"pid{os.getpid()}"
    while limit is None or done + failed < limit:
        claimed = store.claim(worker)
        if claimed is None:
            break
        try:
            labels = oracle.label(claimed.atoms)
        except OracleError as exc:
            store.fail(claimed.id, str(exc), info)
            failed += 1
            log.warning("row %d failed: %s", claimed.id, exc)
            continue
        store.complete(claimed.id, labels, info)
        done += 1
    return done, failed


def label_pending(
    url: str,
    oracle: str = "gpaw",
    settings: dict[str, Any] | None = None,
    workers: int = 1,
    limit_per_worker: int | None = None,
) -> LabelReport:
    """Label every pending row of the store at ``url`` with ``oracle``."""
    make_oracle(oracle, settings)  # bad names or settings fail here, before any worker starts
    report = LabelReport(requeued=LabelStore(url).requeue_running())
    if report.requeued:
        log.info(
            "%d structures left running by a stopped worker are pending again", report.requeued
        )
    args = (url, oracle, settings or {}, limit_per_worker)
    if workers <= 1:
        results = [_work(*args)]
    else:
        with mp.get_context("spawn").Pool(workers) as pool:
            results = pool.starmap(_work, [args] * workers)
    report.completed = sum(r[0] for r in results)
    report.failed = sum(r[1] for r in results)
    return report
