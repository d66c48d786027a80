"""The training loop: masked multi-task loss, one-cycle schedule, checkpoints that resume exactly."""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from matbrain.data.batching import GraphBatch, collate
from matbrain.data.graphs import CrystalGraph
from matbrain.data.splits import TRAIN, VAL, Split
from matbrain.models.base import PropertyModel
from matbrain.training.config import TrainConfig
from matbrain.training.loss import Normalizer, masked_loss

log = logging.getLogger(__name__)

EpochCallback = Callable[["Trainer", dict[str, Any]], None]


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class PreparedData:
    """Graphs aligned with a label matrix, its split and the normalisation fitted on train labels."""

    ids: list[str]
    graphs: list[CrystalGraph]
    targets: np.ndarray  # (n, p) physical units, NaN = missing
    split: Split
    normalizer: Normalizer
    normalized: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.normalized = self.normalizer.normalize(self.targets)

    def indices(self, role: int) -> np.ndarray:
        return self.split.structures_with(role, self.targets)


class Trainer:
    """Fits a ``PropertyModel`` and keeps ``checkpoint.pt`` (resumable) and ``best.pt`` current.

    ``on_best`` is called with the trainer whenever validation improves (it writes the artifact);
    ``callbacks`` run after every epoch with the epoch's history record.
    """

    def __init__(
        self,
        model: PropertyModel,
        config: TrainConfig,
        data: PreparedData,
        run_dir: Path,
        on_best: Callable[[Trainer], None] | None = None,
        callbacks: Sequence[EpochCallback] = (),
        progress: bool = True,
    ) -> None:
        self.config, self.data, self.run_dir = config, data, Path(run_dir)
        self.device = pick_device(config.device)
        self.model = model.to(self.device)
        self.on_best, self.callbacks, self.progress = on_best, list(callbacks), progress
        self.train_idx, self.val_idx = data.indices(TRAIN), data.indices(VAL)
        if len(self.train_idx) == 0:
            raise ValueError("no training labels: check the properties, the split and max_samples")
        self._has_batchnorm = any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())
        self.weights = torch.tensor(config.weights(), dtype=torch.float32, device=self.device)
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        steps = config.epochs * math.ceil(len(self.train_idx) / config.batch_size)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=config.lr, total_steps=steps, pct_start=0.3
        )
        self.epoch = 0  # the next epoch to run
        self.history: list[dict[str, Any]] = []
        self.best_score = math.inf
        self.best_epoch = -1

    # ---------------------------------------------------------------- batches
    def _batch(self, idx: np.ndarray, role: int | None) -> GraphBatch:
        mask = None
        if role is not None:
            mask = self.data.split.mask(role, self.data.targets)[idx]
        return collate([self.data.graphs[i] for i in idx], self.data.normalized[idx], mask).to(
            self.device
        )

    def _batches(
        self, indices: np.ndarray, role: int | None, shuffle_epoch: int | None = None
    ) -> list[np.ndarray]:
        order = np.asarray(indices)
        if shuffle_epoch is not None:
            # the order depends only on (seed, epoch), so a resumed run sees the same batches
            order = np.random.default_rng(self.config.seed + 1000 * shuffle_epoch).permutation(
                order
            )
        bs = self.config.batch_size
        return [order[i : i + bs] for i in range(0, len(order), bs)]

    # ---------------------------------------------------------------- steps
    def train_epoch(self, epoch: int) -> float:
        self.model.train()
        total, count = 0.0, 0
        chunks = self._batches(self.train_idx, TRAIN, shuffle_epoch=epoch)
        for idx in tqdm(
            chunks, desc=f"epoch {epoch + 1}", leave=False, disable=not self.progress, unit="batch"
        ):
            if len(idx) == 1 and self._has_batchnorm:
                continue  # batch norm cannot train on a single graph with a single atom
            batch = self._batch(idx, TRAIN)
            pred = self.model(batch)
            loss = masked_loss(
                pred, batch.targets, batch.label_mask, self.weights, self.config.loss
            )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            n = int(batch.label_mask.sum())
            total += float(loss.detach()) * n
            count += n
        return total / max(count, 1)

    @torch.no_grad()
    def predict_normalized(self, indices: np.ndarray) -> np.ndarray:
        self.model.eval()
        out = [
            self.model(self._batch(idx, None)).cpu().numpy() for idx in self._batches(indices, None)
        ]
        return np.concatenate(out) if out else np.zeros((0, len(self.config.properties)))

    def validate(self) -> tuple[float, dict[str, float]]:
        """Validation loss and per-property MAE/std (normalised MAE); NaN where no labels."""
        if len(self.val_idx) == 0:
            return float("nan"), {}
        pred = self.predict_normalized(self.val_idx)
        mask = self.data.split.mask(VAL, self.data.targets)[self.val_idx]
        target = self.data.normalized[self.val_idx]
        loss = masked_loss(
            torch.from_numpy(pred),
            torch.from_numpy(target).float(),
            torch.from_numpy(mask),
            self.weights.cpu(),
            self.config.loss,
        )
        per_prop = {}
        for j, name in enumerate(self.config.properties):
            m = mask[:, j]
            per_prop[name] = (
                float(np.abs(pred[m, j] - target[m, j]).mean()) if m.any() else float("nan")
            )
        return float(loss), per_prop

    # ---------------------------------------------------------------- loop
    def fit(self) -> list[dict[str, Any]]:
        """Run the remaining epochs. On Ctrl-C the last finished epoch stays resumable."""
        bar = tqdm(
            total=self.config.epochs,
            initial=self.epoch,
            desc=f"{self.config.algorithm} {self.config.level}",
            unit="epoch",
            disable=not self.progress,
        )
        try:
            while self.epoch < self.config.epochs:
                start = time.perf_counter()
                train_loss = self.train_epoch(self.epoch)
                val_loss, val_norm_mae = self.validate()
                finite = [v for v in val_norm_mae.values() if not math.isnan(v)]
                score = float(np.mean(finite)) if finite else train_loss
                record = {
                    "epoch": self.epoch + 1,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "val_mae_over_std": val_norm_mae,
                    "score": score,
                    "lr": self.scheduler.get_last_lr()[0],
                    "seconds": time.perf_counter() - start,
                }
                self.history.append(record)
                self.epoch += 1
                if score < self.best_score:
                    self.best_score, self.best_epoch = score, self.epoch
                    if self.on_best is not None:
                        self.on_best(self)
                self.save_checkpoint()
                bar.update(1)
                bar.set_postfix(
                    train=f"{train_loss:.3f}", val=f"{val_loss:.3f}", best=self.best_epoch
                )
                log.info(
                    "epoch %d: train %.4f val %.4f score %.4f",
                    self.epoch,
                    train_loss,
                    val_loss,
                    score,
                )
                for callback in self.callbacks:
                    callback(self, record)
        except KeyboardInterrupt:
            log.warning(
                "interrupted after epoch %d; resume with: matbrain train --resume-run %s",
                self.epoch,
                self.run_dir,
            )
            raise
        finally:
            bar.close()
        return self.history

    # ---------------------------------------------------------------- checkpoints
    def save_checkpoint(self) -> None:
        state = {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": self.history,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
            "config_hash": self.config.config_hash(),
        }
        path = self.run_dir / "checkpoint.pt"
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)  # atomic: Ctrl-C during the write keeps the previous checkpoint
        (self.run_dir / "history.json").write_text(json.dumps(self.history, indent=1))

    def load_checkpoint(self) -> None:
        path = self.run_dir / "checkpoint.pt"
        # our own file, written above; it holds RNG states that weights-only loading refuses
        state = torch.load(path, map_location=self.device, weights_only=False)
        if state["config_hash"] != self.config.config_hash():
            raise ValueError(
                f"{path} was written with a different config; cannot resume it with this one"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.history = state["epoch"], state["history"]
        self.best_score, self.best_epoch = state["best_score"], state["best_epoch"]
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        log.info("resumed %s at epoch %d", self.run_dir, self.epoch)
