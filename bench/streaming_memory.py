"""Peak memory of training from graphs in memory vs streamed from shards, on 50k structures.

The bundled subset holds ~940 materials; the full dft_3d (76k) needs a download. This bench
builds a dft_3d-schema file of --structures entries from the bundled ones (each copy rattled by
0.02 Å, so every graph is built anew) and trains CGCNN (std size, formation energy, one epoch) on
it twice, each in its own process: with the single-file graph cache loaded whole, and with
``graph_shard_size`` (graphs built and read one shard at a time). Peak resident memory (ru_maxrss)
of each process, and its time, are printed and written to --out as JSON.

    python bench/streaming_memory.py                         # 50,000 structures
    python bench/streaming_memory.py --structures 5000       # a quick look
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_dataset(path: Path, n: int) -> None:
    import numpy as np

    from matbrain.data.jarvis import load_jarvis_records

    records = load_jarvis_records("bundled")
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        rec = copy.deepcopy(records[i % len(records)])
        rec["jid"] = f"{rec['jid']}-copy{i}"
        atoms = rec["atoms"]
        coords = np.asarray(atoms["coords"], dtype=float)
        lattice = np.asarray(atoms["lattice_mat"], dtype=float)
        noise = rng.normal(0, 0.02, coords.shape)  # Å
        if not atoms.get("cartesian", False):
            noise = noise @ np.linalg.inv(lattice)
        atoms["coords"] = (coords + noise).tolist()
        out.append(rec)
    with gzip.open(path, "wt") as fh:
        json.dump(out, fh)


def child(dataset: str, shard_size: int | None, root: str) -> None:
    """One training run in this process; prints its peak memory as JSON."""
    from matbrain.training.config import resolve_config
    from matbrain.training.pipeline import run_training

    overrides = {"epochs": 1, "batch_size": 64, "properties": ["formation_energy"],
                 "dataset": dataset, "split": "random", "graph_shard_size": shard_size,
                 "output_root": root}  # fmt: skip
    start = time.perf_counter()
    result = run_training(resolve_config("cgcnn", "std", overrides=overrides), progress=False)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_GB": round(peak_kb / 1024**2, 2),
                      "seconds": round(time.perf_counter() - start, 1),
                      "test_mae": round(result.metrics[0]["test_mae"], 4)}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structures", type=int, default=50_000)
    parser.add_argument("--shard-size", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("bench/results/streaming_memory.json"))
    parser.add_argument("--child", nargs=3, metavar=("DATASET", "SHARD_SIZE", "ROOT"))
    args = parser.parse_args()
    if args.child:
        dataset, shard, root = args.child
        child(dataset, int(shard) or None, root)
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "dft_3d_copies.json.gz"
        make_dataset(data, args.structures)
        env = {
            **os.environ,
            "MATBRAIN_CACHE": str(Path(tmp) / "cache"),
            "OPENBLAS_NUM_THREADS": "1",
        }
        rows = []
        for mode, shard in (("in memory", 0), ("streamed from shards", args.shard_size)):
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(data), str(shard), str(Path(tmp) / "runs")],
                capture_output=True, text=True, env=env,
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(done.stderr[-3000:])
            row = {"mode": mode, "shard_size": shard or None,
                   **json.loads(done.stdout.strip().splitlines()[-1])}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
    ratio = rows[1]["peak_rss_GB"] / rows[0]["peak_rss_GB"]
    print(f"{args.structures} structures: peak memory streamed / in memory = {ratio:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"structures": args.structures, "rows": rows,
                                    "ratio": round(ratio, 3)}, indent=1))  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
