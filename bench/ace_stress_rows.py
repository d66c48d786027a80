"""Does fitting stresses fix linear ACE's elastic constants? (tried on mlearn Si at the max level)

The linear fit sees energies and forces. mlearn's Si training split also carries DFT stresses
(`stress_raw_6`, VASP kBar), and its uniaxially strained diamond cells give C11 = 153 and
C12 = 58 GPa (B = 89). This adds one row per stress component to the least-squares problem:
(1/V) dE/dε of the structure, from the basis projections at strains ±1e-3 (central
differences; the trainer's `stress_design`, which `potential train --with-stress` now uses),
weighted by w, beside the run's chosen energy weight and ridge. It prints validation and test errors and the model's C11, C12 and B of diamond Si
(clamped-ion, ±1 % uniaxial strain).

Usage: python bench/ace_stress_rows.py --run <a bench/mlearn.py --algorithm ace --level max
Si run folder> (its data/, e0s.json and ace_fit.json are reused; the design matrices are cached
in --cache). Measured 2026-12-07 (bench/results/ace_stress_rows_Si.txt): without stresses C12 83
and B 105 GPa; at w = 0.3-0.5, C12 57-61 and B 86-88 GPa with test energy and force MAEs
unchanged (2.07-2.09 meV/atom, 0.0549-0.0550 eV/Å against 2.10 and 0.0545).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ase.io
import numpy as np
from ase.build import bulk

from ace_hot_snapshots import design
from matbrain.potentials.ace.linear import _errors, _ridge_path, basis_config, stress_design
from matbrain.potentials.config import resolve_ace_config
from matbrain.potentials.data import STRESS_KEY, mlearn_stress_to_ase

STRESS_WEIGHTS = (0.0, 0.1, 0.3, 0.5, 1.0)
DFT_ELASTIC = "DFT (training split's uniaxial cells): C11 153, C12 58, B 89 GPa"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/mlearn"))
    parser.add_argument("--cache", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    run = args.run
    bconf = basis_config(
        resolve_ace_config("max", overrides={"data": ".", "elements": ["Si"]}), ["Si"]
    )
    frames = {n: ase.io.read(run / "data" / f"{n}.xyz", ":") for n in ("train", "valid", "test")}
    matrices = design("Si", run, args.cache)  # the max level's, cached
    # the prepared split keeps the structures' ids; their stresses come from the mlearn file
    raw = {
        a.info["jid"]: a.info["stress_raw_6"]
        for a in ase.io.read(args.data / "mlearn_Si_train.extxyz.gz", ":")
    }
    for split in ("train", "valid"):
        for atoms in frames[split]:
            atoms.info["stress_raw_6"] = raw[atoms.info["jid"]]
            atoms.info[STRESS_KEY] = mlearn_stress_to_ase(atoms)
    start = time.time()
    rows, labels = {}, {}
    for n in ("train", "valid"):  # the trainer's own rows (--with-stress)
        rows[n], labels[n] = stress_design(bconf, frames[n])
    print(
        f"stress rows: {len(labels['train'])} training, {len(labels['valid'])} validation, {time.time() - start:.0f} s"
    )
    fit = json.loads((run / "ace_fit.json").read_text())
    weight, alpha = fit["energy_weight"], fit["ridge_alpha"]
    print(f"the run's energy weight {weight:g} and ridge {alpha:g}; {DFT_ELASTIC}")
    a_train, y_train, n_train = matrices["train_a"], matrices["train_y"], int(matrices["train_n"])
    diamond = bulk("Si", "diamond", a=5.4685, cubic=True)
    uniaxial = [diamond.copy() for _ in (0, 1)]
    for cell, e in zip(uniaxial, (0.01, -0.01), strict=True):
        cell.set_cell(diamond.cell @ np.diag([1 + e, 1, 1]), scale_atoms=True)
        cell.info[STRESS_KEY] = np.zeros((3, 3))  # rows are built for labelled structures
    uniaxial_rows = stress_design(bconf, uniaxial)[0]
    for w in STRESS_WEIGHTS:
        a = np.concatenate([a_train[:n_train] * weight, a_train[n_train:], rows["train"] * w])
        y = np.concatenate([y_train[:n_train] * weight, y_train[n_train:], labels["train"] * w])
        coef = _ridge_path(a, y, (alpha,))[0]
        e_valid, f_valid = _errors(
            matrices["valid_a"], matrices["valid_y"], int(matrices["valid_n"]), coef
        )
        e_test, f_test = _errors(
            matrices["test_a"], matrices["test_y"], int(matrices["test_n"]), coef
        )
        s_valid = np.abs(rows["valid"] @ coef - labels["valid"]).mean()
        plus, minus = (uniaxial_rows @ coef).reshape(2, 6)
        c11, c12 = (plus[:2] - minus[:2]) / 0.02
        print(f"stress weight {w:g}: validation E {e_valid:.3f} meV/atom, F {f_valid:.4f} eV/Å, "
              f"stress {s_valid:.2f} GPa | test E {e_test:.3f}, F {f_test:.4f} | "
              f"C11 {c11:.0f}, C12 {c12:.0f}, B {(c11 + 2 * c12) / 3:.0f} GPa", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
