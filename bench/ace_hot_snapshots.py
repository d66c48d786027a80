"""Can linear ACE fit the hottest mlearn snapshots' forces at all? Ni against Cu, same basis.

Both mlearn sets hold 34 high-temperature training snapshots and 6 test ones of 108 atoms (mean
|F| per component above 1 eV/Å). This fits the `max` level's basis (1,200 functions, 5.5 Å, the
richer radial basis) twice: to every force row, and to the hot snapshots' force rows alone, and
prints the force MAE on hot and other ("cool") snapshots, training and test. If a fit to the hot
rows alone still leaves a large error on those same rows, the basis cannot represent them: what
is left is not a generalisation gap.

Usage: python bench/ace_hot_snapshots.py --run Cu=<run> --run Ni=<run>
where each run is a `bench/mlearn.py --algorithm ace` run folder of that element (its
data/{train,valid,test}.xyz and e0s.json are reused); design matrices are cached in --cache.
Measured 2026-12-07 (bench/results/ace_hot_snapshots.txt): hot training snapshots Cu 0.0135
eV/Å (0.0128 fitted alone), Ni 0.039 (0.037 fitted alone); hot test ones Cu 0.016, Ni 0.042.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ase.io
import numpy as np

from matbrain.potentials.ace.linear import _design, _ridge_path, basis_config
from matbrain.potentials.config import resolve_ace_config
from matbrain.potentials.data import energy_and_forces

HOT_MEAN_FORCE = 1.0  # eV/Å, mean |F| per component of a snapshot
ALPHAS = (1e-10, 1e-8, 1e-6)


def design(element: str, run: Path, cache: Path) -> dict[str, np.ndarray]:
    """The `max` level's design matrices of the run's three splits (cached)."""
    path = cache / f"{element.lower()}_design_1200_5.5.npz"
    if not path.exists():
        cfg = resolve_ace_config("max", overrides={"data": ".", "elements": [element]})
        bconf, e0s = basis_config(cfg, [element]), json.loads((run / "e0s.json").read_text())
        parts = {}
        for name in ("train", "valid", "test"):
            start = time.time()
            frames = ase.io.read(run / "data" / f"{name}.xyz", ":")
            parts[f"{name}_a"], parts[f"{name}_y"], parts[f"{name}_n"] = _design(
                bconf, frames, e0s, 2
            )
            print(
                f"{element} {name}: {parts[f'{name}_a'].shape} in {time.time() - start:.0f} s",
                flush=True,
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **parts)
    return dict(np.load(path))


def hot_rows(run: Path, split: str) -> tuple[np.ndarray, int, float]:
    """(per force row: is its snapshot hot, number of snapshots, mean |F| of the hot ones)."""
    frames = ase.io.read(run / "data" / f"{split}.xyz", ":")
    hot, forces = [], []
    for atoms in frames:
        mean_force = float(np.abs(energy_and_forces(atoms)[1]).mean())
        hot += [mean_force > HOT_MEAN_FORCE] * (3 * len(atoms))
        forces += [mean_force] if mean_force > HOT_MEAN_FORCE else []
    return np.array(hot), len(frames), float(np.mean(forces)) if forces else 0.0


def report(element: str, run: Path, cache: Path) -> None:
    parts = design(element, run, cache)
    hot_train, n_train, force_train = hot_rows(run, "train")
    hot_test, n_test, force_test = hot_rows(run, "test")
    # force rows only: the energy rows come first, one per snapshot
    a_train, y_train = parts["train_a"][n_train:], parts["train_y"][n_train:]
    a_test, y_test = parts["test_a"][n_test:], parts["test_y"][n_test:]
    print(f"{element}: hot snapshots' share of the force rows: training {hot_train.mean():.3f}, "
          f"test {hot_test.mean():.3f}; their mean |F| {force_train:.2f} / {force_test:.2f} eV/Å")  # fmt: skip
    for label, rows in (("every force row", slice(None)), ("hot rows alone", hot_train)):
        for alpha, coef in zip(
            ALPHAS, _ridge_path(a_train[rows], y_train[rows], ALPHAS), strict=True
        ):
            train = np.abs(a_train @ coef - y_train)
            test = np.abs(a_test @ coef - y_test)
            print(f"{element} fitted to {label:15s} ridge {alpha:g}: training hot "
                  f"{train[hot_train].mean():.4f} cool {train[~hot_train].mean():.4f} | test hot "
                  f"{test[hot_test].mean():.4f} cool {test[~hot_test].mean():.4f} "
                  f"all {test.mean():.4f} eV/Å", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, help="ELEMENT=RUN_FOLDER")
    parser.add_argument("--cache", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    for item in args.run:
        element, run = item.split("=", 1)
        report(element, Path(run), args.cache)


if __name__ == "__main__":
    main()
