"""Labelling throughput with 1 and 2 workers, locally and on a Dask LocalCluster, in one run.

Each measurement builds a fresh store of rattled structures and labels all of them with
``label_pending``: EMT (milliseconds per structure: what the executor itself costs) and GPAW
(plane waves, PBE: seconds per structure, as real labelling is). Prints structures per second
and the speed-up of 2 workers over 1 for each executor; writes JSON to --out.

    python bench/labelling.py                       # EMT 40 Cu cells, GPAW 8 Si cells
    python bench/labelling.py --gpaw-structures 4 --skip-emt
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def _fill(url: str, element: str, n: int) -> None:
    from ase.build import bulk

    from matbrain.active.store import LabelStore

    store = LabelStore(url)
    for i in range(n):
        atoms = (
            bulk("Cu", "fcc", a=3.6, cubic=True)
            if element == "Cu"
            else bulk("Si", "diamond", a=5.43)
        )
        atoms.rattle(0.05, seed=i)
        assert store.add(atoms) is not None  # rattled copies are distinct structures


def measure(oracle: str, settings: dict, element: str, n: int, workers: int, executor: str) -> dict:
    from matbrain.active.labelling import label_pending

    with tempfile.TemporaryDirectory() as tmp:
        url = str(Path(tmp) / "bench.db")
        _fill(url, element, n)
        start = time.perf_counter()
        report = label_pending(url, oracle, settings, workers=workers, executor=executor,
                               echo=lambda line: None)  # fmt: skip
        seconds = time.perf_counter() - start
    row = {"oracle": oracle, "executor": executor, "workers": workers, "structures": n,
           "completed": report.completed, "seconds": seconds,
           "structures_per_s": report.completed / seconds}  # fmt: skip
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--emt-structures", type=int, default=40)
    parser.add_argument("--gpaw-structures", type=int, default=8)
    parser.add_argument("--skip-emt", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench/results/labelling.json"))
    args = parser.parse_args()
    cases = []
    if not args.skip_emt:
        cases.append(("emt", {}, "Cu", args.emt_structures))
    gpaw = {"cutoff_eV": 250, "kpoint_density_per_A": 1.5}
    cases.append(("gpaw", gpaw, "Si", args.gpaw_structures))
    rows = [
        measure(oracle, settings, element, n, workers, executor)
        for oracle, settings, element, n in cases
        for executor in ("local", "dask")
        for workers in (1, 2)
    ]
    print("\n| oracle | executor | 1 worker (structures/s) | 2 workers | speed-up |")
    print("|---|---|---|---|---|")
    for oracle, *_ in cases:
        for executor in ("local", "dask"):
            one, two = (next(r for r in rows if r["oracle"] == oracle and r["executor"] == executor
                             and r["workers"] == w) for w in (1, 2))  # fmt: skip
            print(f"| {oracle} | {executor} | {one['structures_per_s']:.3g} | "
                  f"{two['structures_per_s']:.3g} | {two['structures_per_s'] / one['structures_per_s']:.2f}× |")  # fmt: skip
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
