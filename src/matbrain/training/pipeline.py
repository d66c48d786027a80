"""A whole training run: data -> graphs -> split -> fit -> metrics, plots, artifact, registry."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from matbrain import __version__
from matbrain.common.devices import pick_device
from matbrain.common.runs import git_commit, new_run_dir, register_run
from matbrain.data.shards import ShardedGraphSet
from matbrain.data.sources import load_dataset
from matbrain.data.splits import TEST, TRAIN, VAL, drop_outliers, make_split
from matbrain.data.symmetry import piezo_vanishes
from matbrain.models.artifact import load_artifact, save_artifact
from matbrain.models.base import PropertyModel
from matbrain.models.normalizer import Normalizer
from matbrain.models.registry import get_model_class
from matbrain.properties import physical_predictions
from matbrain.training import plots
from matbrain.training.config import TrainConfig
from matbrain.training.distributed import init_distributed
from matbrain.training.finetune import finetune_model, finetune_record, finetune_source
from matbrain.training.metrics import format_table, property_metrics, write_metrics_csv
from matbrain.training.trainer import EpochCallback, PreparedData, Trainer

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    run_dir: Path
    metrics: list[dict[str, Any]]
    history: list[dict[str, Any]]

    def table(self) -> str:
        return format_table(self.metrics)


def prepare_data(config: TrainConfig, progress: bool = True) -> tuple[PreparedData, dict[str, Any]]:
    """Load, build graphs (cached), subsample, split and fit the normalisation."""
    props = config.property_list()
    dataset = load_dataset(config.dataset, props)
    model_class = get_model_class(config.algorithm)
    inputs = model_class.dataset_inputs(dataset, config, progress)
    kept = [i for i, sid in enumerate(dataset.ids) if sid in inputs.graphs]
    dataset = dataset.subset(kept)
    if config.max_samples is not None and config.max_samples < len(dataset):
        pick = np.sort(
            np.random.default_rng(config.seed).choice(
                len(dataset), config.max_samples, replace=False
            )
        )
        dataset = dataset.subset(pick)
    split = make_split(dataset, config.seed, config.split)
    outliers: dict[str, list[str]] = {}
    if config.outlier_sigma is not None:
        split, outliers = drop_outliers(
            split, dataset.targets, dataset.ids, config.properties, config.outlier_sigma
        )
        for name, ids in outliers.items():
            if ids:
                log.info("outlier filter: %d training labels of %s dropped", len(ids), name)
    normalizer = Normalizer.fit(dataset.targets, split.mask(TRAIN, dataset.targets))
    if config.finetune_from is not None:
        # the source model's normalisation: the first forward pass reproduces its predictions
        normalizer = finetune_source(config).normalizer
    data = PreparedData(
        ids=dataset.ids,
        graphs=inputs.sequence(dataset.ids)  # streamed from shards
        if isinstance(inputs, ShardedGraphSet)
        else [inputs.graphs[i] for i in dataset.ids],
        targets=dataset.targets,
        split=split,
        normalizer=normalizer,
        piezo_vanishes=piezo_vanishes(dataset.structures)
        if "piezo_max_dij" in config.properties
        else None,
    )
    for name, counts in split.summary(dataset)["labels"].items():
        if counts["train"] == 0:
            log.warning(
                "property %s has no training labels in this data; its head learns nothing", name
            )
    info = {
        "source": dataset.source,
        "n_structures": len(dataset),
        "structure_hash": dataset.structure_hash(),
        "label_hash": dataset.label_hash(),
        "input_cache_key": inputs.key,
        "skipped_structures": inputs.skipped,
        "read_report": dataset.read_report,
        "split": split.summary(dataset),
        "finetuned_from": finetune_record(config) if config.finetune_from else None,
        "outliers_dropped": {
            "sigma": config.outlier_sigma,
            "count": {k: len(v) for k, v in outliers.items()},
            "ids": outliers,
        },
    }
    return data, info


def build_model(config: TrainConfig, data: PreparedData | None = None) -> PropertyModel:
    """A new model for ``config``; a fine-tuned specialist starts from its source's weights."""
    if config.finetune_from is not None:
        return finetune_model(config)
    model = get_model_class(config.algorithm).from_config(
        config, n_properties=len(config.properties), data=data
    )
    if data is not None:
        model.initialize_from_data(data)
    return model


def run_training(
    config: TrainConfig,
    run_dir: Path | None = None,
    callbacks: Sequence[EpochCallback] = (),
    progress: bool = True,
) -> RunResult:
    """Train from scratch into a new run folder, or continue ``run_dir`` if it has a checkpoint.

    Started by ``torchrun`` (several processes), it trains data-parallel: one run folder, written
    by rank 0 (see :mod:`matbrain.training.distributed`)."""
    dist = init_distributed(torch.device(pick_device(config.device)))
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    resuming = run_dir is not None and (Path(run_dir) / "checkpoint.pt").exists()
    root = Path(config.output_root)
    created = run_dir is None
    if run_dir is None:
        run_dir = dist.broadcast(new_run_dir(root, config.run_group()) if dist.is_main else None)
    run_dir = Path(run_dir)
    for sub in ("plots", "predictions", "logs"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    # the run's own log holds its INFO lines whatever the console shows (rank 0's only)
    log_file = "train.log" if dist.is_main else f"train.rank{dist.rank}.log"
    handler = logging.FileHandler(run_dir / "logs" / log_file)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package_log = logging.getLogger("matbrain")
    level = package_log.level
    package_log.setLevel(min(level or logging.INFO, logging.INFO))
    package_log.addHandler(handler)
    log.info("run %s: %s", run_dir, "resumed" if resuming else "started")
    try:
        try:
            with dist.main_first():  # rank 0 fills the graph cache, the others read it
                data, data_info = prepare_data(config, progress=progress and dist.is_main)
        except BaseException:
            if created and dist.is_main:  # nothing trained: no empty run folder is left behind
                package_log.removeHandler(handler)
                handler.close()
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        # preparing the data can draw random numbers (loading a pretrained featurizer does, and
        # only when its features are not cached yet): reseed, so that the weights depend on the
        # seed alone, not on the state of the cache
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        props = config.property_list()
        model = build_model(config, data)
        if not resuming and dist.is_main:
            config.to_yaml(run_dir / "config.yaml")
            (run_dir / "data.json").write_text(json.dumps(data_info, indent=1))
        provenance = {
            "matbrain_version": __version__,
            "git_commit": git_commit(),
            "config_hash": config.config_hash(),
            "structure_hash": data_info["structure_hash"],
            "label_hash": data_info["label_hash"],
            "seed": config.seed,
            "processes": dist.world_size,
        }

        def write_best(trainer: Trainer) -> None:
            save_artifact(
                run_dir / "best.pt",
                trainer.best_model(),
                props,
                data.normalizer,
                config.graph_config(),
                extra={"epoch": trainer.epoch, "provenance": provenance},
            )

        trainer = Trainer(model, config, data, run_dir, on_best=write_best, callbacks=callbacks,
                          progress=progress, dist=dist)  # fmt: skip
        if resuming:
            trainer.load_checkpoint()
        log.info(
            "training %s (%s, %d parameters) on %d structures: %d train / %d val / %d test",
            config.algorithm,
            config.preset,
            model.n_parameters(),
            len(data.ids),
            len(data.indices(TRAIN)),
            len(data.indices(VAL)),
            len(data.indices(TEST)),
        )
        start = time.perf_counter()
        history = trainer.fit()
        dist.barrier()  # rank 0 has written best.pt
        metrics = evaluate_run(run_dir, data, trainer, props, write=dist.is_main)
        summary = {
            **provenance,
            "algorithm": config.algorithm,
            "level": config.level,
            "preset": config.preset,
            "properties": config.properties,
            "dataset": config.dataset,
            "split": data.split.kind,
            "n_parameters": model.n_parameters(),
            "epochs": config.epochs,
            "best_epoch": trainer.best_epoch,
            "best_epoch_per_property": {
                name: head["epoch"]
                for name, head in zip(config.properties, trainer.head_best, strict=False)
            }
            or None,
            "epochs_run": trainer.epoch,
            "stop_reason": trainer.stop_reason,
            "units": {p.name: p.unit for p in props},
            "finetuned_from": data_info.get("finetuned_from"),
            "train_seconds_this_session": time.perf_counter() - start,
            "structures_per_second": _throughput(history, len(data.indices(TRAIN))),
            "path": str(run_dir.resolve()),
            "test_mae": {r["property"]: r["test_mae"] for r in metrics},
            "test_mae_over_mad": {r["property"]: r["test_mae_over_mad"] for r in metrics},
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        if dist.is_main:
            (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
            register_run(root, summary)
        return RunResult(run_dir=run_dir, metrics=metrics, history=history)
    finally:
        package_log.removeHandler(handler)
        package_log.setLevel(level)
        handler.close()


def _throughput(history: list[dict[str, Any]], n_train: int) -> float:
    seconds = [h["seconds"] for h in history]
    return n_train * len(seconds) / sum(seconds) if seconds and sum(seconds) > 0 else float("nan")


def evaluate_run(
    run_dir: Path, data: PreparedData, trainer: Trainer, props: list[Any], write: bool = True
) -> list[dict[str, Any]]:
    """Metrics, predictions and plots of the best model on every labelled structure (files only
    when ``write``: every training process computes them, rank 0 writes)."""
    best = load_artifact(run_dir / "best.pt", device=trainer.device)
    trainer.model.load_state_dict(best.model.state_dict())
    everything = np.arange(len(data.ids))
    predictions = physical_predictions(
        data.normalizer.denormalize(trainer.predict_normalized(everything)),
        props,
        [trainer.model.elements_present(x) for x in data.graphs],
        data.piezo_vanishes,
    )
    rows = property_metrics(props, predictions, data.targets, data.split)
    if not write:
        return rows
    (run_dir / "metrics.json").write_text(json.dumps(rows, indent=1))
    write_metrics_csv(rows, run_dir / "metrics.csv")
    _write_predictions(run_dir / "predictions" / "predictions.csv", data, predictions, props)
    for j, prop in enumerate(props):
        mask = data.split.mask(TEST, data.targets)[:, j]
        plots.parity_plot(
            data.targets[mask, j],
            predictions[mask, j],
            f"{prop.description} (test)",
            prop.unit,
            run_dir / "plots" / f"parity_{prop.name}.png",
            mae=rows[j]["test_mae"] if mask.any() else None,
        )
    if trainer.history:
        plots.learning_curves(trainer.history, run_dir / "plots" / "learning_curves.png")
    return rows


def _write_predictions(
    path: Path, data: PreparedData, predictions: np.ndarray, props: list[Any]
) -> None:
    import pandas as pd

    role_names = {TRAIN: "train", VAL: "val", TEST: "test"}
    frame: dict[str, Any] = {"id": data.ids}
    for j, prop in enumerate(props):
        frame[f"{prop.name}_true"] = data.targets[:, j]
        frame[f"{prop.name}_pred"] = predictions[:, j]
        frame[f"{prop.name}_split"] = [role_names.get(int(r), "") for r in data.split.roles[:, j]]
    pd.DataFrame(frame).to_csv(path, index=False)
