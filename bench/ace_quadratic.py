"""Does a quadratic term lift linear ACE's force accuracy? (qSNAP-style, tried on mlearn Ni)

E_i = c . B_i + sum_{a<=b} q_ab B_ia B_ib, with B_i the first K functions of a small ACE basis.
The quadratic columns need each atom's own B-gradients, which pyace gives when only that atom
keeps its neighbour list; the linear columns are python-ace's design matrix, as in
``matbrain.potentials.ace.linear``. Energy weight and ridge are chosen on validation as there.

Usage: python bench/ace_quadratic.py --run <a bench/mlearn.py ACE run folder> --quadratic 40
(it reuses the run's data/{train,valid,test}.xyz and e0s.json; design matrices are cached in --cache).
Measured 2026-12-07 (Ni, 1,200 linear functions at 5.5 Å; bench/results/ace_quadratic_Ni.txt):
test force MAE 0.0134 eV/Å linear;
+210 quadratic columns of 20 functions 0.0134; +820 of 40 functions 0.0134.
"""

from __future__ import annotations

import argparse
import json
import time
from multiprocessing import Pool
from pathlib import Path

import ase.io
import numpy as np

from matbrain.potentials.ace.linear import (
    ENERGY_WEIGHTS,
    RIDGE_ALPHAS,
    _design,
    _errors,
    _ridge_path,
)

_WORKER: dict = {}


def basis(elements, functions: int, cutoff: float, nradmax=(20, 10, 6, 4, 2), lmax=(0, 5, 4, 3, 2)):
    from pyace import create_multispecies_basis_config

    return create_multispecies_basis_config({
        "deltaSplineBins": 0.001, "elements": sorted(elements),
        "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1], "ndensity": 1}},
        "bonds": {"ALL": {"radbase": "SBessel", "radparameters": [5.25], "rcut": cutoff, "dcut": 0.01,
                          "NameOfCutoffFunction": "cos"}},
        "functions": {"number_of_functions_per_element": functions,
                      "ALL": {"nradmax_by_orders": list(nradmax), "lmax_by_orders": list(lmax)}},
    })  # fmt: skip


def _init(elements, functions: int, cutoff: float) -> None:
    from pyace import ACEBBasisSet, ACEBEvaluator, ACECalculator

    _WORKER["basis"] = ACEBBasisSet(basis(elements, functions, cutoff))
    _WORKER["evaluator"] = ACEBEvaluator(_WORKER["basis"])  # the calculator does not own it
    _WORKER["calc"] = ACECalculator(_WORKER["evaluator"])
    _WORKER["cutoff"] = cutoff


def quadratic_rows(atoms):
    """(energy row, force rows) of the quadratic columns of one structure."""
    from pyace.atomicenvironment import aseatoms_to_atomicenvironment

    calc = _WORKER["calc"]
    env = aseatoms_to_atomicenvironment(atoms, cutoff=_WORKER["cutoff"])
    n, neighbours = env.n_atoms_real, env.neighbour_list
    calc.compute(env, compute_projections=True, compute_b_grad=True)
    b = np.array(calc.projections)
    k = b.shape[1]
    m = np.zeros((n, 3, k, k))
    for i in range(n):  # atom i's own gradients: only i keeps its neighbours
        env.neighbour_list = [neighbours[j] if j == i else [] for j in range(n)]
        calc.compute(env, compute_projections=False, compute_b_grad=True)
        m += np.einsum("a,jbx->jxab", b[i], np.array(calc.forces_bfuncs))
    upper = np.triu_indices(k)
    forces = (m + m.transpose(0, 1, 3, 2))[:, :, upper[0], upper[1]].reshape(3 * n, -1)
    return (b.T @ b)[upper] / n, forces


def fit_and_score(label, a, y, n):
    grid = []
    for weight in ENERGY_WEIGHTS:
        rw = np.ones(len(y["train"]))
        rw[: n["train"]] = weight
        for alpha, coef in zip(
            RIDGE_ALPHAS,
            _ridge_path(a["train"] * rw[:, None], y["train"] * rw, RIDGE_ALPHAS),
            strict=True,
        ):
            grid.append((weight, alpha, *_errors(a["valid"], y["valid"], n["valid"], coef), coef))
    best_e, best_f = min(g[2] for g in grid), min(g[3] for g in grid)
    weight, alpha, e, f, coef = min(grid, key=lambda g: g[2] / best_e + g[3] / best_f)
    test = _errors(a["test"], y["test"], n["test"], coef)
    print(f"{label}: {a['train'].shape[1]} columns, energy weight {weight:g}, ridge {alpha:g}; "
          f"validation {e:.3f} meV/atom {f:.4f} eV/Å; test {test[0]:.3f} meV/atom {test[1]:.4f} eV/Å", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--linear", type=int, default=1200, help="linear ACE functions")
    parser.add_argument(
        "--quadratic", type=int, default=40, help="functions whose products are added"
    )
    parser.add_argument("--cutoff", type=float, default=5.5)
    parser.add_argument("--cache", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    e0s = json.loads((args.run / "e0s.json").read_text())
    frames = {
        k: ase.io.read(args.run / "data" / f"{k}.xyz", ":") for k in ("train", "valid", "test")
    }
    args.cache.mkdir(parents=True, exist_ok=True)

    linear_cache = args.cache / f"ace_linear_{args.linear}_{args.cutoff}.npz"
    if not linear_cache.exists():
        out = {}
        for name, group in frames.items():
            t = time.time()
            out[name + "_a"], out[name + "_y"], out[name + "_n"] = _design(
                basis(e0s, args.linear, args.cutoff), group, e0s, 2
            )
            print(
                f"linear design, {name}: {out[name + '_a'].shape} in {time.time() - t:.0f} s",
                flush=True,
            )
        np.savez(linear_cache, **out)
    lin = dict(np.load(linear_cache))
    quad_cache = args.cache / f"ace_quadratic_{args.quadratic}_{args.cutoff}.npz"
    if not quad_cache.exists():
        out = {}
        with Pool(2, initializer=_init, initargs=(list(e0s), args.quadratic, args.cutoff)) as pool:
            for name, group in frames.items():
                t = time.time()
                rows = pool.map(quadratic_rows, group, chunksize=2)
                out[name] = np.concatenate([np.stack([e for e, _ in rows])] + [f for _, f in rows])
                print(
                    f"quadratic columns, {name}: {out[name].shape} in {time.time() - t:.0f} s",
                    flush=True,
                )
        np.savez(quad_cache, **out)
    quad = dict(np.load(quad_cache))

    y = {k: lin[k + "_y"] for k in frames}
    n = {k: int(lin[k + "_n"]) for k in frames}
    fit_and_score(f"linear {args.linear}", {k: lin[k + "_a"] for k in frames}, y, n)
    fit_and_score(f"linear {args.linear} + quadratic {args.quadratic}",
                  {k: np.concatenate([lin[k + "_a"], quad[k]], axis=1) for k in frames}, y, n)  # fmt: skip


if __name__ == "__main__":
    main()
