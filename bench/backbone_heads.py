"""Is it the heads or the features? Variants of the heads on a frozen backbone, one property.

Same official split and 50-epoch recipe as ``bench/property_models.py``. Prints the test MAE of:
- the MLP heads (matbrain's own training path) for several seeds, and ensembles of k of them
  (their averaged predictions, as ``matbrain predict --model A --model B ...`` gives them);
- the linear part alone (ridge on the potential's energy per atom, the Hubbard-U shift and the
  atom fractions);
- kernel ridge regression (RBF and Laplacian kernels on the standardised features) on the
  residual of that linear part, kernel width and ridge chosen on the validation split.

    python bench/backbone_heads.py --property formation_energy --algorithm chgnet+sevennet
    python bench/backbone_heads.py --algorithm sevennet-l3i5 --composition-kernel on \
        --seeds 42 1 2 3 4 5
    python bench/backbone_heads.py --algorithm e3nn --seeds 42 1 2 3 4 5   # seed ensembles only
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))


def seed_ensemble(
    prop: str, algorithm: str, seeds: list[int], out: Path, composition_kernel: str = "auto"
) -> None:
    """Train the heads once per seed, then score ensembles of k of them on the test materials
    through ``matbrain predict``'s own path (``EnsemblePredictor`` on the test structures): the
    mean test MAE over every choice of k seeds, for each k."""
    from itertools import combinations

    from matbrain.data.jarvis import load_jarvis_records
    from matbrain.data.structures import jarvis_atoms_to_ase
    from matbrain.inference import EnsemblePredictor, Predictor
    from matbrain.training.config import resolve_config
    from matbrain.training.pipeline import run_training
    from property_models import _overrides

    runs = []
    for seed in seeds:
        overrides = {**_overrides(50, 16, 1e-3, out), "properties": [prop], "seed": seed,
                     "composition_kernel": composition_kernel}  # fmt: skip
        result = run_training(resolve_config(algorithm, "std", overrides=overrides), progress=False)
        print(f"MLP heads, seed {seed}: test MAE {result.metrics[0]['test_mae']:.4f}", flush=True)
        runs.append(result.run_dir)
    frame = pd.read_csv(runs[0] / "predictions" / "predictions.csv")
    test = frame[frame[f"{prop}_split"] == "test"]
    records = {r["jid"]: r for r in load_jarvis_records()}
    atoms = [jarvis_atoms_to_ase(records[i]["atoms"]) for i in test["id"]]
    truth = test[f"{prop}_true"].to_numpy()
    ensemble = EnsemblePredictor([Predictor.from_path(run) for run in runs])
    each = ensemble.predict_each(atoms)[:, :, 0]  # (seeds, test); features built once
    for k in range(1, len(runs) + 1):
        maes = [
            np.abs(each[list(c)].mean(0) - truth).mean() for c in combinations(range(len(runs)), k)
        ]
        print(f"ensemble of {k} seed(s) (matbrain predict --model RUN ... x{k}): test MAE "
              f"{np.mean(maes):.4f} (mean over {len(maes)} choices)", flush=True)  # fmt: skip


def _kernel(a: np.ndarray, b: np.ndarray, gamma: float, kind: str) -> np.ndarray:
    import torch

    from matbrain.models.composition_kernel import laplacian, rbf

    if kind == "rbf":
        return rbf(a, b, gamma)
    return laplacian(torch.from_numpy(a), torch.from_numpy(b), gamma).numpy()


def kernel_ridge(prop: str, algorithm: str, out: Path) -> None:
    import torch

    from matbrain.data.splits import TEST, TRAIN, VAL
    from matbrain.models.backbone import _fixed, linear_inputs, with_hubbard_u
    from matbrain.models.linear_baseline import fit_ridge
    from matbrain.training.config import resolve_config
    from matbrain.training.pipeline import prepare_data

    cfg = resolve_config(
        algorithm, "std", overrides={"properties": [prop], "output_root": str(out)}
    )
    data, _ = prepare_data(cfg, progress=False)
    fixed = [_fixed(x) for x in data.graphs]
    x = np.stack([f.features for f in fixed]).astype(float)
    lin = with_hubbard_u(torch.from_numpy(linear_inputs(fixed))).numpy().astype(float)
    y = data.targets[:, 0].astype(float)
    tr, va, te = (data.split.mask(role, data.targets)[:, 0] for role in (TRAIN, VAL, TEST))
    z = (x - x[tr].mean(0)) / (x[tr].std(0) + 1e-6)
    weights, bias, _ = fit_ridge(lin, y, tr, va)  # the linear part the heads start from
    base = lin @ weights + bias
    print(f"linear part alone: test MAE {np.abs(base[te] - y[te]).mean():.4f}")
    residual, dim, rows = y - base, z.shape[1], []
    for kind, widths in (("rbf", (0.1, 0.3, 1, 3)), ("laplacian", (0.03, 0.1, 0.3, 1))):
        for width in widths:
            k_train = _kernel(z[tr], z[tr], width / dim, kind)
            k_valid, k_test = (_kernel(z[m], z[tr], width / dim, kind) for m in (va, te))
            for lam in (1e-3, 1e-2, 1e-1, 1.0):
                coef = np.linalg.solve(k_train + lam * np.eye(len(k_train)), residual[tr])
                valid = np.abs(base[va] + k_valid @ coef - y[va]).mean()
                rows.append(
                    (valid, np.abs(base[te] + k_test @ coef - y[te]).mean(), kind, width, lam)
                )
    valid, test, kind, width, lam = min(rows)
    print(f"kernel ridge ({kind}, width {width}/dim, ridge {lam}; chosen on validation "
          f"{valid:.4f}): test MAE {test:.4f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--property", default="formation_energy")
    parser.add_argument("--algorithm", default="chgnet+sevennet")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=Path("bench/out/backbone_heads"))
    parser.add_argument("--composition-kernel", default="auto", choices=("auto", "on", "off"))
    args = parser.parse_args()
    seed_ensemble(args.property, args.algorithm, args.seeds, args.out, args.composition_kernel)
    if args.algorithm not in ("e3nn", "cgcnn"):  # a graph network has no features to regress on
        kernel_ridge(args.property, args.algorithm, args.out)


if __name__ == "__main__":
    main()
