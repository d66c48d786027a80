"""Training throughput of a property model with 1 and 2 data-parallel (DDP) processes, in one run.

Each measurement is one ``matbrain train`` from the command line, as a user runs it, on the
bundled subset (formation energy, official split): one process with ``--batch-size 2B``, and
``--devices 2`` with ``--batch-size B`` (the same effective batch, so the same optimisation).
Throughput is training structures per second over the epochs (validation excluded), from the
run's summary.json. One process is measured with 1 and with N torch threads, so that a speed-up
from two processes is not a speed-up from using more cores. Writes JSON to --out.

    python bench/ddp_training.py                      # CGCNN and e3nn (std), 3 epochs, CPU
    python bench/ddp_training.py --device cuda        # on a machine with 2 GPUs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(
    algorithm: str, devices: int, batch: int, threads: int, args: argparse.Namespace
) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": "1"}
        command = [sys.executable, "-m", "matbrain.cli.main", "train", "--algorithm", algorithm,
                   "--property", "formation_energy", "--level", args.level, "--epochs", str(args.epochs),
                   "--batch-size", str(batch), "--max-samples", str(args.max_samples),
                   "--output-root", tmp, "--device", args.device, "--devices", str(devices),
                   "--dropout", "0", "--quiet"]  # fmt: skip
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
        summary = json.loads(next(Path(tmp).glob("*/run_*/summary.json")).read_text())
    return {
        "algorithm": algorithm,
        "processes": devices,
        "batch_per_process": batch,
        "threads_per_process": threads,
        "structures_per_second": round(summary["structures_per_second"], 1),
        "test_mae_eV_per_atom": round(summary["test_mae"]["formation_energy"], 4),
        "wall_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithms", nargs="+", default=["cgcnn", "e3nn"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--level", default="std", help="its model size (preset); epochs from --epochs"
    )
    parser.add_argument("--batch", type=int, default=16, help="per process with 2 processes")
    parser.add_argument("--max-samples", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("bench/results/ddp_training.json"))
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    rows = []
    for algorithm in args.algorithms:
        runs = [(1, 2 * args.batch, 1), (1, 2 * args.batch, min(2, cores)), (2, args.batch, 1)]
        for devices, batch, threads in runs:
            row = measure(algorithm, devices, batch, threads, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
        one = rows[-3]["structures_per_second"]
        two = rows[-1]["structures_per_second"]
        print(f"{algorithm}: 2 DDP processes / 1 process (1 thread): {two / one:.2f}x; "
              f"/ 1 process ({rows[-2]['threads_per_process']} threads): "
              f"{two / rows[-2]['structures_per_second']:.2f}x")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpu_count": cores, "device": args.device,
                                    "epochs": args.epochs, "rows": rows}, indent=1))  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
