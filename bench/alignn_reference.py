"""Train the reference ALIGNN (alignn package, pure-torch model) on exactly our split of one property.

Used by ``bench/property_models.py``. The structures go to ALIGNN in order train, val, test with
``keep_data_order`` so that its split is ours; its test predictions are read back from the
``prediction_results_test_set.csv`` that its trainer writes.
"""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

import numpy as np
import pandas as pd


def train_alignn(
    records: dict[str, dict],
    train: dict[str, float],
    val: dict[str, float],
    test: dict[str, float],
    epochs: int,
    out_dir: Path,
    batch_size: int = 16,
    lr: float = 1e-3,
) -> dict:
    """records: jid -> JARVIS ``atoms`` dict. Returns test MAE, seconds per epoch, predictions."""
    from alignn.config import TrainingConfig
    from alignn.data import get_train_val_loaders
    from alignn.train import train_dgl

    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = [
        {"jid": j, "atoms": records[j], "target": y}
        for part in (train, val, test)
        for j, y in part.items()
    ]
    config = TrainingConfig(
        dataset="user_data",
        target="target",
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=lr,
        n_train=len(train),
        n_val=len(val),
        n_test=len(test),
        keep_data_order=True,
        num_workers=0,
        output_dir=str(out_dir),
        filename=str(out_dir / "data"),
        write_checkpoint=False,
        progress=False,
        neighbor_strategy="pure_torch",
        model={
            # the published property-model architecture (4 ALIGNN + 4 GCN layers, 256 hidden), no forces
            "name": "alignn_atomwise_pure",
            "output_features": 1,
            "atom_input_features": 92,
            "hidden_features": 256,
            "alignn_layers": 4,
            "gcn_layers": 4,
            "calculate_gradient": False,
            "gradwise_weight": 0.0,
            "atomwise_weight": 0.0,
            "stresswise_weight": 0.0,
        },
    )
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        loaders = get_train_val_loaders(
            dataset_array=dataset,
            target="target",
            n_train=config.n_train,
            n_val=config.n_val,
            n_test=config.n_test,
            batch_size=config.batch_size,
            atom_features=config.atom_features,
            neighbor_strategy=config.neighbor_strategy,
            line_graph=True,
            id_tag="jid",
            workers=0,
            filename=config.filename,
            cutoff=config.cutoff,
            cutoff_extra=config.cutoff_extra,
            max_neighbors=config.max_neighbors,
            three_body_cutoff=config.three_body_cutoff,
            keep_data_order=True,
            output_dir=config.output_dir,
            use_pure_torch=True,
            dtype=config.dtype,
        )
        start = time.perf_counter()
        train_dgl(config, train_val_test_loaders=list(loaders))
        seconds = time.perf_counter() - start
    (out_dir / "alignn_stdout.log").write_text(log.getvalue())
    pred = pd.read_csv(out_dir / "prediction_results_test_set.csv")
    mae = float(np.abs(pred["target"] - pred["prediction"]).mean())
    return {
        "test_mae": mae,
        "n_test": len(pred),
        "seconds_per_epoch": seconds / epochs,
        "structures_per_s": len(train) * epochs / seconds,
    }
