"""Compare training recipes away from the official test split: re-splits of its training and
validation materials.

A recipe chosen by its score on the official 96 test materials is chosen on the test set. This
bench leaves those materials out entirely: the official training and validation materials of
one property are shuffled (one shuffle per fold seed) and cut 80/10/10 into training,
validation and an inner test set, and each recipe ("arm") trains on every fold with every seed.
It prints the inner test MAE and the validation MAE of each arm, and on how many (fold, seed)
pairs an arm beats the first one.

Arms (``--arms``):
    part-on              heads with the kernel part on (it compares composition and structure)
    part-on-composition  the same with the part comparing compositions only (before 2026-12-06)
    part-auto            the default (``--composition-kernel auto``)

    python bench/heldout_resplits.py --algorithm sevennet-l3i5 --property formation_energy \\
        --arms part-on-composition part-on --folds 11 12 13 14 15 16 17 18 19 20 --seeds 42 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

# each arm: its config overrides, and whether its kernel part compares compositions only
ARMS: dict[str, tuple[dict, bool]] = {
    "part-on": ({"composition_kernel": "on"}, False),
    "part-on-composition": ({"composition_kernel": "on"}, True),
    "part-auto": ({"composition_kernel": "auto"}, False),
}


def resplit(fold: int):
    """A ``make_split`` stand-in: the official split with its test materials left out and its
    training + validation materials cut 80/10/10 by ``fold``'s shuffle (first property)."""
    from matbrain.data.splits import TEST, TRAIN, UNUSED, VAL, leaderboard_split

    def make(dataset, seed, kind="auto"):
        split = leaderboard_split(dataset, strict=True)
        roles = split.roles.copy()
        labelled = ~np.isnan(dataset.targets[:, 0])
        pool = np.flatnonzero(((roles[:, 0] == TRAIN) | (roles[:, 0] == VAL)) & labelled)
        order = np.random.default_rng(fold).permutation(pool)
        n_train, n_val = int(round(0.8 * len(order))), int(round(0.1 * len(order)))
        roles[:, 0] = UNUSED
        roles[order[:n_train], 0] = TRAIN
        roles[order[n_train : n_train + n_val], 0] = VAL
        roles[order[n_train + n_val :], 0] = TEST
        split.roles = roles
        return split

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", default="sevennet-l3i5")
    parser.add_argument("--property", default="formation_energy")
    parser.add_argument("--arms", nargs="+", default=["part-on-composition", "part-on"],
                        choices=sorted(ARMS))  # fmt: skip
    parser.add_argument("--folds", type=int, nargs="+", default=list(range(11, 21)))
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("bench/out/heldout_resplits"))
    args = parser.parse_args()

    import matbrain.models.backbone as backbone
    import matbrain.training.pipeline as pipeline
    from matbrain.training.config import resolve_config
    from property_models import _overrides

    structure_aware = backbone.kernel_descriptors
    scores: dict[str, list[tuple[float, float]]] = {}
    for arm in args.arms:
        arm_overrides, composition_only = ARMS[arm]
        backbone.kernel_descriptors = (
            (lambda config: "composition") if composition_only else structure_aware
        )
        for fold in args.folds:
            pipeline.make_split = resplit(fold)  # type: ignore[assignment]
            for seed in args.seeds:
                overrides = {**_overrides(args.epochs, 16, 1e-3, args.out / arm),
                             "properties": [args.property], "seed": seed, **arm_overrides}  # fmt: skip
                config = resolve_config(args.algorithm, "std", overrides=overrides)
                metrics = pipeline.run_training(config, progress=False).metrics[0]
                scores.setdefault(arm, []).append((metrics["test_mae"], metrics["val_mae"]))
                print(f"{arm} fold {fold} seed {seed}: inner test MAE {metrics['test_mae']:.4f}, "
                      f"validation {metrics['val_mae']:.4f}", flush=True)  # fmt: skip
    first = np.array(scores[args.arms[0]])
    print(f"\n{args.algorithm}, {args.property}: {len(args.folds)} re-splits x "
          f"{len(args.seeds)} seeds, official test materials left out")  # fmt: skip
    for arm in args.arms:
        a = np.array(scores[arm])
        better = int((a[:, 0] < first[:, 0]).sum())
        print(f"{arm:22s} inner test MAE {a[:, 0].mean():.4f}  validation MAE {a[:, 1].mean():.4f}"
              f"  better than {args.arms[0]} on {better} of {len(a)}")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scores.json").write_text(json.dumps(scores, indent=1))


if __name__ == "__main__":
    main()
