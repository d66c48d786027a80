"""Graph-building throughput and peak memory of ``data process``, against pymatgen's neighbour search.

On the bundled JARVIS subset and on a large set made by replicating it (default 50,000
structures), both in this one run:

- matbrain: full graphs (capped neighbour list, edge vectors, three-body angles), vesin backend,
  and the ASE backend for reference;
- pymatgen: ``Structure.get_neighbor_list`` (neighbour search only, no cap, no angles) on the same
  structures: a lower bound of what a pymatgen-based pipeline would spend.

Peak memory is the resident-set growth measured in a fresh subprocess per measurement.

    python bench/graphs.py                 # subset + 50k
    python bench/graphs.py --n-large 5000  # quicker
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time


def _load(n: int):
    from matbrain.data.jarvis import jarvis_dataset
    from matbrain.properties import resolve_properties

    ds = jarvis_dataset(resolve_properties(None))
    reps = -(-n // len(ds))
    return (ds.structures * reps)[:n]


def _measure(kind: str, n: int, queue) -> None:  # runs in a fresh process
    structures = _load(n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if kind.startswith("matbrain"):
        import numpy as np

        from matbrain.data.cache import process_dataset
        from matbrain.data.dataset import CrystalDataset
        from matbrain.data.graphs import GraphConfig
        from matbrain.properties import resolve_properties

        ds = CrystalDataset(
            [str(i) for i in range(n)],
            structures,
            np.zeros((n, 1)),
            resolve_properties(["formation_energy"]),
            "bench",
        )
        graphs = process_dataset(
            ds, GraphConfig(backend=kind.split("-")[1]), use_cache=False, progress=False
        ).graphs
        edges = sum(len(g.center) for g in graphs.values())
    else:
        from pymatgen.io.ase import AseAtomsAdaptor

        edges = 0
        graphs = []
        for a in structures:
            s = AseAtomsAdaptor.get_structure(a)
            centers, _, _, _ = s.get_neighbor_list(6.0)
            edges += len(centers)
            graphs.append(centers)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put(
        {
            "kind": kind,
            "n": n,
            "seconds": seconds,
            "per_s": n / seconds,
            "edges": edges,
            "peak_growth_MB": (peak - before) / 1024,
        }
    )


def measure(kind: str, n: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(kind, n, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-large", type=int, default=50_000)
    parser.add_argument(
        "--with-ase",
        action="store_true",
        help="also time matbrain with the ASE neighbour-list backend",
    )
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    rows = []
    for n in (940, args.n_large):
        for kind in ("matbrain-vesin", *(["matbrain-ase"] if args.with_ase else []), "pymatgen"):
            row = measure(kind, n)
            rows.append(row)
            print(
                f"{kind:<16} n={n:>6}  {row['per_s']:>8.1f} structures/s  {row['seconds']:>8.1f} s  "
                f"peak +{row['peak_growth_MB']:>7.0f} MB  ({row['edges']} edges)",
                flush=True,
            )
    by = {(r["kind"], r["n"]): r for r in rows}
    for n in (940, args.n_large):
        ratio = by[("matbrain-vesin", n)]["per_s"] / by[("pymatgen", n)]["per_s"]
        print(
            f"n={n}: matbrain (full graphs with angles) is {ratio:.1f}x the throughput of pymatgen's neighbour search alone"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
