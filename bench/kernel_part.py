"""The graph networks' kernel part alone: what each descriptor set gives, in closed form.

The kernel part (``matbrain.models.composition_kernel``) carries most of CGCNN's and e3nn's
accuracy on the bundled subset, and it is fitted in seconds, so its descriptors can be compared
on far more than the 96 official test materials. For each property and descriptor set this
prints, with the part fitted as training fits it (``CompositionKernel.fit``, mode ``on``; width,
ridge and structure weight chosen on validation; final fit on training and validation labels):

- the leave-one-out MAE over the official training and validation labels (exact, closed form);
- the official test MAE (predictions as ``predict`` reports them);
- the mean test MAE over re-splits that leave the official test materials out: the official
  training and validation materials shuffled and cut 80/10/10 (one shuffle per fold), and on how
  many folds each set beats the first one.

    python bench/kernel_part.py --properties formation_energy bulk_modulus shear_modulus ehull
"""

from __future__ import annotations

import argparse

import numpy as np
import torch


def _fit_and_score(prop, data, graphs, fractions, structure, kind, train, val, test):
    """(leave-one-out MAE over train+val, test MAE) of the part for one split, physical units."""
    from matbrain.data.batching import collate
    from matbrain.models.bond_descriptors import batch_bond_descriptors
    from matbrain.models.composition_kernel import CompositionKernel, kernel_points
    from matbrain.properties import get_property, physical_predictions

    kernel = CompositionKernel(1, len(kernel_points(train | val)), "on", kind)
    residual = data.normalized[:, :1].astype(float)
    values = kernel.fit(fractions, residual, train[:, None], val[:, None], bonds=structure)
    scale = data.normalizer.std[0]
    fitted = train | val
    loo = float(np.abs(values[fitted, 0] - residual[fitted, 0]).mean() * scale)
    rows = np.flatnonzero(test)
    batch = collate([graphs[i] for i in rows])
    with torch.no_grad():
        stats = batch_bond_descriptors(batch, kernel.needs_cell, kernel.needs_chemistry)
        part = kernel(torch.from_numpy(fractions[rows]), stats).numpy()
    pred = physical_predictions(data.normalizer.denormalize(part), [get_property(prop)],
                                [graphs[i].numbers for i in rows])  # fmt: skip
    return loo, float(np.abs(pred[:, 0] - data.targets[rows, 0]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--properties", nargs="+", default=["formation_energy"])
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=["composition+structure", "composition+structure+chemistry"],
        help="descriptor sets (matbrain.models.composition_kernel.DESCRIPTOR_SETS with a "
        "structure block); the first is the reference",
    )
    parser.add_argument("--folds", nargs="+", type=int, default=[11, 12, 13, 14, 15])
    args = parser.parse_args()

    from matbrain.data.splits import TEST, TRAIN, VAL
    from matbrain.models.bond_descriptors import graph_bond_descriptors
    from matbrain.models.composition_kernel import STRUCTURE_COLUMNS, structure_blocks
    from matbrain.models.linear_baseline import composition_matrix
    from matbrain.training.config import resolve_config
    from matbrain.training.pipeline import prepare_data

    for prop in args.properties:
        cfg = resolve_config("e3nn", "std", overrides={"properties": [prop]})
        data, _ = prepare_data(cfg, progress=False)
        graphs = list(data.graphs)
        fractions = composition_matrix([g.numbers for g in graphs])
        masks = {role: data.split.mask(role, data.targets)[:, 0] for role in (TRAIN, VAL, TEST)}
        pool = np.flatnonzero(masks[TRAIN] | masks[VAL])
        print(f"\n{prop}: {masks[TRAIN].sum()} training, {masks[VAL].sum()} validation, "
              f"{masks[TEST].sum()} test labels; re-splits of the {len(pool)} training and "
              f"validation materials, folds {args.folds}", flush=True)  # fmt: skip
        results = {}
        for kind in args.kinds:
            if kind not in STRUCTURE_COLUMNS:
                raise SystemExit(f"{kind!r} has no structure block")
            cell, chemistry = structure_blocks(kind)
            structure = graph_bond_descriptors(graphs, cell=cell, chemistry=chemistry)
            official = _fit_and_score(prop, data, graphs, fractions, structure, kind,
                                      masks[TRAIN], masks[VAL], masks[TEST])  # fmt: skip
            inner = []
            for fold in args.folds:
                order = np.random.default_rng(fold).permutation(pool)
                n_train, n_val = int(0.8 * len(order)), int(0.1 * len(order))
                train, val, test = (np.zeros(len(graphs), bool) for _ in range(3))
                train[order[:n_train]] = True
                val[order[n_train : n_train + n_val]] = True
                test[order[n_train + n_val :]] = True
                inner.append(_fit_and_score(prop, data, graphs, fractions, structure, kind,
                                            train, val, test)[1])  # fmt: skip
            results[kind] = (official, np.array(inner))
        reference = results[args.kinds[0]][1]
        print("| descriptors | leave-one-out MAE (train + val) | official test MAE | "
              "re-split test MAE (mean) | folds better than the first |")  # fmt: skip
        print("|---|---|---|---|---|")
        for kind, ((loo, test_mae), inner) in results.items():
            better = int((inner < reference).sum())
            print(f"| {kind} | {loo:.4g} | {test_mae:.4g} | {inner.mean():.4g} | "
                  f"{better} of {len(inner)} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
