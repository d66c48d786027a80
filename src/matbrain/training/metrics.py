"""Per-property error metrics: MAE next to MAD, MAE/MAD and the trivial baselines."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from matbrain.data.splits import TEST, TRAIN, VAL, Split
from matbrain.properties import Property


def mae(pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.abs(pred - true).mean()) if len(true) else float("nan")


def mad(values: np.ndarray) -> float:
    """Mean absolute deviation from the mean: the MAE of always predicting the mean."""
    return float(np.abs(values - values.mean()).mean()) if len(values) else float("nan")


def property_metrics(
    properties: list[Property], predictions: np.ndarray, targets: np.ndarray, split: Split
) -> list[dict[str, Any]]:
    """One row per property with validation/test MAE, test MAD, MAE/MAD and baselines.

    predictions, targets : (n_structures, n_properties) in physical units
    """
    rows = []
    for j, prop in enumerate(properties):
        sel = {r: split.mask(r, targets)[:, j] for r in (TRAIN, VAL, TEST)}
        y_test, p_test = targets[sel[TEST], j], predictions[sel[TEST], j]
        y_train = targets[sel[TRAIN], j]
        test_mad = mad(y_test)
        test_mae = mae(p_test, y_test)
        train_mean = float(y_train.mean()) if len(y_train) else float("nan")
        rows.append(
            {
                "property": prop.name,
                "key": prop.key,
                "unit": prop.unit,
                "n_train": int(sel[TRAIN].sum()),
                "n_val": int(sel[VAL].sum()),
                "n_test": int(sel[TEST].sum()),
                "val_mae": mae(predictions[sel[VAL], j], targets[sel[VAL], j]),
                "test_mae": test_mae,
                "test_mad": test_mad,
                "test_mae_over_mad": test_mae / test_mad
                if test_mad and test_mad > 0
                else float("nan"),
                "baseline_train_mean_mae": mae(np.full_like(y_test, train_mean), y_test),
                "baseline_zero_mae": mae(np.zeros_like(y_test), y_test),
            }
        )
    return rows


def write_metrics_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Fixed-width text table of the metrics (what the CLI prints)."""
    head = f"{'property':<18}{'unit':<9}{'n_test':>7}{'val MAE':>10}{'test MAE':>10}{'MAD':>10}{'MAE/MAD':>9}{'mean-base':>11}{'zero-base':>11}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['property']:<18}{r['unit'] or '-':<9}{r['n_test']:>7}{r['val_mae']:>10.4g}{r['test_mae']:>10.4g}"
            f"{r['test_mad']:>10.4g}{r['test_mae_over_mad']:>9.3f}{r['baseline_train_mean_mae']:>11.4g}{r['baseline_zero_mae']:>11.4g}"
        )
    return "\n".join(lines)
