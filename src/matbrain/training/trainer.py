"""The training loop: masked multi-task loss, one-cycle schedule, checkpoints that resume exactly."""

from __future__ import annotations

import copy
import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch.optim.swa_utils import SWALR, AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from matbrain.common.devices import pick_device
from matbrain.common.files import atomic_path
from matbrain.common.resume import refuse_changed_config
from matbrain.data.graphs import CrystalGraph
from matbrain.data.shards import shard_order
from matbrain.data.splits import TRAIN, VAL, Split
from matbrain.models.base import PropertyModel
from matbrain.models.normalizer import Normalizer
from matbrain.training.config import TrainConfig
from matbrain.training.distributed import Distributed
from matbrain.training.loss import masked_loss

log = logging.getLogger(__name__)

EpochCallback = Callable[["Trainer", dict[str, Any]], None]


@dataclass
class PreparedData:
    """Graphs aligned with a label matrix, its split and the normalisation fitted on train labels."""

    ids: list[str]
    graphs: Sequence[CrystalGraph]  # a list, or ShardedGraphs streamed from a shard cache
    targets: np.ndarray  # (n, p) physical units, NaN = missing
    split: Split
    normalizer: Normalizer
    normalized: np.ndarray = field(init=False)
    piezo_vanishes: np.ndarray | None = None  # (n,) bool: the point group forbids piezoelectricity

    def __post_init__(self) -> None:
        self.normalized = self.normalizer.normalize(self.targets)

    def indices(self, role: int) -> np.ndarray:
        return self.split.structures_with(role, self.targets)

    @property
    def shard_of(self) -> np.ndarray | None:
        """The shard of each structure when the graphs are streamed from shards."""
        return getattr(self.graphs, "shard_of", None)


class Trainer:
    """Fits a ``PropertyModel`` and keeps ``checkpoint.pt`` (resumable) and ``best.pt`` current.

    ``on_best`` is called with the trainer whenever validation improves (it writes the artifact
    from ``trainer.eval_model()``: the EMA or SWA weights when those are on); ``callbacks`` run
    after every epoch with the epoch's history record.

    Options of the config used here: ``acc_steps`` (gradient accumulation; the accumulated
    gradient equals that of one batch of ``acc_steps x batch_size``), ``ema_decay``, ``swa``
    (averaging from ``swa_start`` of the epochs, or from the point where early stopping would
    stop, for ``patience`` more epochs), ``patience`` (early stopping), ``scheduler``
    (``onecycle`` per optimizer step or ``plateau`` per epoch), ``freeze_encoder_epochs`` and
    ``encoder_lr_factor`` (fine-tuning).

    With ``dist`` (several processes, see :mod:`matbrain.training.distributed`), the model is
    wrapped in DDP, ``batch_size`` is per process, validation is gathered from every process and
    only rank 0 writes the checkpoint and calls ``on_best`` and the callbacks.
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
        dist: Distributed | None = None,
    ) -> None:
        self.config, self.data, self.run_dir = config, data, Path(run_dir)
        self.dist = dist or Distributed()
        self.device = self.dist.device(torch.device(pick_device(config.device)))
        if self.dist.enabled and self.device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model.to(self.device)
        # what the training steps call: the DDP wrapper (it averages the gradients) or the model
        self.net: torch.nn.Module = self.model
        if self.dist.enabled:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.on_best, self.callbacks = on_best, list(callbacks)
        self.progress = progress and self.dist.is_main
        self.train_idx, self.val_idx = data.indices(TRAIN), data.indices(VAL)
        if len(self.train_idx) == 0:
            raise ValueError("no training labels: check the properties, the split and max_samples")
        self._has_batchnorm = any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())
        self.weights = torch.tensor(config.weights(), dtype=torch.float32, device=self.device)
        heads = model.head_parameters()
        head_ids = {id(p) for p in heads}
        self.encoder_params = [p for p in model.parameters() if id(p) not in head_ids]
        groups: list[dict[str, Any]] = [{"params": heads, "lr": config.lr}]
        if self.encoder_params:
            groups.append(
                {"params": self.encoder_params, "lr": config.lr * config.encoder_lr_factor}
            )
        self.optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler: Any
        if config.scheduler == "onecycle":
            steps = config.epochs * self.steps_per_epoch()
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer,
                max_lr=[g["lr"] for g in groups],
                total_steps=steps,
                pct_start=0.3,
            )
        else:
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, factor=0.5, patience=max((config.patience or 40) // 4, 3)
            )
        self.ema = (
            AveragedModel(
                model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True
            )
            if config.ema_decay is not None
            else None
        )
        self.swa_model: AveragedModel | None = None
        self.swa_scheduler: SWALR | None = None
        self.swa_end: int | None = None  # epoch at which the SWA phase ends
        self.epoch = 0  # the next epoch to run
        self.history: list[dict[str, Any]] = []
        self.best_score = math.inf
        self.best_epoch = -1
        self.stop_reason = "epochs"
        # independent heads (a frozen backbone): each property keeps its own best epoch
        self.head_prefixes = model.independent_heads()
        self.head_best: list[dict[str, Any]] = [
            {"score": math.inf, "epoch": -1, "state": {}} for _ in self.head_prefixes or ()
        ]

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self._train_batches(0)) / self.config.acc_steps)

    def eval_model(self) -> PropertyModel:
        """The weights that are validated and saved: SWA average, else EMA, else the raw model."""
        if self.swa_model is not None and int(self.swa_model.n_averaged) > 0:
            return cast(PropertyModel, self.swa_model.module)
        if self.ema is not None:
            return cast(PropertyModel, self.ema.module)
        return self.model

    def best_model(self) -> PropertyModel:
        """What best.pt holds: the validated weights, with each independent head at its own best
        epoch (``eval_model()`` itself when heads share an encoder)."""
        model = self.eval_model()
        if not any(h["state"] for h in self.head_best):
            return model
        best = copy.deepcopy(model)
        state = best.state_dict()
        for head in self.head_best:
            state.update(head["state"])
        best.load_state_dict(state)
        return best

    def _update_head_best(self, per_property: dict[str, float]) -> bool:
        """Keep the weights of each head whose validation MAE improved; True if any did."""
        assert self.head_prefixes is not None
        state = self.eval_model().state_dict()
        improved = False
        for head, prefixes, name in zip(
            self.head_best, self.head_prefixes, self.config.properties, strict=True
        ):
            value = per_property.get(name, math.nan)
            if math.isnan(value) or value >= head["score"]:
                continue
            head.update(score=value, epoch=self.epoch, state={
                k: v.detach().clone() for k, v in state.items() if k.startswith(prefixes)
            })  # fmt: skip
            improved = True
        return improved

    # ---------------------------------------------------------------- batches
    def _batch(self, idx: np.ndarray, role: int | None) -> Any:
        mask = None
        if role is not None:
            mask = self.data.split.mask(role, self.data.targets)[idx]
        return self.model.collate(
            [self.data.graphs[i] for i in idx], self.data.normalized[idx], mask
        ).to(self.device)

    def _batches(
        self, indices: np.ndarray, shuffle_epoch: int | None = None, size: int | None = None
    ) -> list[np.ndarray]:
        order = np.asarray(indices)
        if shuffle_epoch is not None:
            # the order depends only on (seed, epoch), so a resumed run sees the same batches
            rng = np.random.default_rng(self.config.seed + 1000 * shuffle_epoch)
            shard_of = self.data.shard_of
            # streamed graphs: shard by shard, so that each shard is read once per epoch
            order = (
                rng.permutation(order) if shard_of is None else shard_order(order, shard_of, rng)
            )
        bs = size or self.config.batch_size
        return [order[i : i + bs] for i in range(0, len(order), bs)]

    def _train_batches(self, epoch: int) -> list[np.ndarray]:
        """This process's training batches of an epoch: its share of each global batch of
        ``batch_size x world_size`` structures (every process gets the same number of batches)."""
        world = self.dist.world_size
        batches = self._batches(self.train_idx, epoch, self.config.batch_size * world)
        # every process needs a non-empty share; batch norm cannot train on a single graph
        smallest = 2 if self._has_batchnorm else 1
        chunks = [idx for idx in batches if len(idx) >= smallest * world]
        return [self.dist.shard(idx) for idx in chunks]

    # ---------------------------------------------------------------- steps
    def accumulate_gradient(self, group: Sequence[np.ndarray]) -> tuple[float, int]:
        """Backpropagate a group of batches as if they were one batch.

        Each batch's masked-mean loss is weighted by its share of the group's label weight, so
        the accumulated gradient is exactly the gradient of the group's masked-mean loss.
        Returns the group's loss and its number of labels.
        """
        batches = [self._batch(idx, TRAIN) for idx in group]
        shares = [
            float((b.label_mask.to(self.weights.dtype) * self.weights).sum()) for b in batches
        ]
        total = sum(shares)
        # with DDP, each process weighs its batches by their share of every process's labels
        # (DDP averages the gradients): the step is that of the global batch's masked mean
        scale = 1.0
        if self.dist.enabled:
            everyone = self.dist.sum(total)
            scale = self.dist.world_size * total / everyone if everyone > 0 else 0.0
        loss_sum, count = 0.0, 0
        for batch, share in zip(batches, shares, strict=True):
            if share == 0 and not self.dist.enabled:  # DDP: every process runs every backward
                continue
            pred = self.net(batch)
            loss = masked_loss(
                pred, batch.targets, batch.label_mask, self.weights, self.config.loss
            )
            weight = share / total if total > 0 else 0.0
            (loss * (weight * scale)).backward()
            loss_sum += float(loss.detach()) * weight
            count += int(batch.label_mask.sum())
        return loss_sum, count

    def train_epoch(self, epoch: int) -> float:
        self.model.train()
        frozen = epoch < self.config.freeze_encoder_epochs
        if not self.dist.enabled:  # DDP needs every parameter in the graph: grads dropped below
            for p in self.encoder_params:
                p.requires_grad_(not frozen)
        total, count = 0.0, 0
        chunks = self._train_batches(epoch)
        k = self.config.acc_steps
        groups = [chunks[i : i + k] for i in range(0, len(chunks), k)]
        in_swa = self.swa_scheduler is not None
        for group in tqdm(
            groups, desc=f"epoch {epoch + 1}", leave=False, disable=not self.progress, unit="step"
        ):
            self.optimizer.zero_grad(set_to_none=True)
            loss, n = self.accumulate_gradient(group)
            if frozen and self.dist.enabled:
                for p in self.encoder_params:
                    p.grad = None  # the optimizer skips parameters without a gradient
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            if self.config.scheduler == "onecycle" and not in_swa:
                self.scheduler.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            total += loss * n
            count += n
        for p in self.encoder_params:
            p.requires_grad_(True)
        if self.dist.enabled:  # the epoch's loss over every process's labels
            total, count = self.dist.sum(total), int(self.dist.sum(count))
        return total / max(count, 1)

    @torch.no_grad()
    def predict_normalized(
        self, indices: np.ndarray, model: torch.nn.Module | None = None
    ) -> np.ndarray:
        model = model if model is not None else self.model
        model.eval()
        mine = self.dist.shard(np.asarray(indices))  # each process predicts its share
        out = [model(self._batch(idx, None)).cpu().numpy() for idx in self._batches(mine)]
        empty = np.zeros((0, len(self.config.properties)), dtype=np.float32)
        return np.concatenate([*self.dist.gather(np.concatenate(out) if out else empty)])

    def validate(self) -> tuple[float, dict[str, float]]:
        """Validation loss and per-property MAE/std (normalised MAE) of ``eval_model()``."""
        if len(self.val_idx) == 0:
            return float("nan"), {}
        pred = self.predict_normalized(self.val_idx, self.eval_model())
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

    # ---------------------------------------------------------------- SWA and stopping
    def _start_swa(self, end_epoch: int) -> None:
        self.swa_model = AveragedModel(self.model, use_buffers=True)
        self.swa_scheduler = SWALR(
            self.optimizer,
            # one rate per parameter group: SWALR takes a list too (its annotation says float)
            swa_lr=[g["lr"] * self.config.swa_lr_factor for g in self.optimizer.param_groups],  # type: ignore[arg-type]
            anneal_epochs=max(1, min(5, end_epoch - self.epoch)),
        )
        self.swa_end = end_epoch
        log.info("SWA from epoch %d to %d", self.epoch + 1, end_epoch)

    def _after_epoch(self, score: float) -> bool:
        """Schedulers, SWA phase and early stopping after an epoch; True to stop."""
        cfg = self.config
        if self.swa_scheduler is not None:
            self.swa_scheduler.step()
            if self.epoch >= (self.swa_end or cfg.epochs):
                self.stop_reason = "swa finished"
                return True
            return False
        if cfg.scheduler == "plateau":
            self.scheduler.step(score)
        stale = self.epoch - self.best_epoch
        if cfg.patience is not None and stale >= cfg.patience:
            if cfg.swa and self.epoch < cfg.epochs:
                self._start_swa(min(cfg.epochs, self.epoch + cfg.patience))
                return False
            self.stop_reason = f"early stop: no validation improvement in {cfg.patience} epochs"
            return True
        if cfg.swa and self.epoch >= int(cfg.swa_start * cfg.epochs) and self.epoch < cfg.epochs:
            self._start_swa(cfg.epochs)
        return False

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
            while self.epoch < self.config.epochs and self.stop_reason == "epochs":
                start = time.perf_counter()
                train_loss = self.train_epoch(self.epoch)
                if self.swa_model is not None:
                    self.swa_model.update_parameters(self.model)
                val_loss, val_norm_mae = self.validate()
                finite = [v for v in val_norm_mae.values() if not math.isnan(v)]
                score = float(np.mean(finite)) if finite else train_loss
                record = {
                    "epoch": self.epoch + 1,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "val_mae_over_std": val_norm_mae,
                    "score": score,
                    "lr": self.optimizer.param_groups[0]["lr"],
                    "phase": "swa" if self.swa_model is not None else "train",
                    "seconds": time.perf_counter() - start,
                }
                self.history.append(record)
                self.epoch += 1
                if self.head_prefixes is not None and finite:  # each head its own best
                    improved = self._update_head_best(val_norm_mae)
                    heads = [h["score"] for h in self.head_best if not math.isinf(h["score"])]
                    new_best = float(np.mean(heads)) if heads else score
                else:
                    improved, new_best = score < self.best_score, score
                if improved:
                    self.best_score, self.best_epoch = new_best, self.epoch
                    if self.on_best is not None and self.dist.is_main:
                        self.on_best(self)
                if self._after_epoch(score):
                    log.info("stopping after epoch %d: %s", self.epoch, self.stop_reason)
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
                for callback in self.callbacks if self.dist.is_main else ():
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
        if not self.dist.is_main:
            return
        state = {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": self.history,
            "ema": None if self.ema is None else self.ema.state_dict(),
            "swa_model": None if self.swa_model is None else self.swa_model.state_dict(),
            "swa_scheduler": None
            if self.swa_scheduler is None
            else self.swa_scheduler.state_dict(),
            "swa_end": self.swa_end,
            "stop_reason": self.stop_reason,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "head_best": self.head_best,
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
            "config_hash": self.config.config_hash(),
        }
        path = self.run_dir / "checkpoint.pt"
        with atomic_path(path) as tmp:  # Ctrl-C during the write keeps the previous checkpoint
            torch.save(state, tmp)
        (self.run_dir / "history.json").write_text(json.dumps(self.history, indent=1))

    def load_checkpoint(self) -> None:
        path = self.run_dir / "checkpoint.pt"
        # our own file, written above; it holds RNG states that weights-only loading refuses
        state = torch.load(path, map_location=self.device, weights_only=False)
        if state["config_hash"] != self.config.config_hash():
            refuse_changed_config(self.run_dir / "config.yaml", self.config.model_dump(),
                                  f"run {self.run_dir}")  # fmt: skip
            raise ValueError(
                f"{path} was written with a different config; cannot resume it with this one"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        if state.get("swa_model") is not None:
            self._start_swa(state["swa_end"])
            assert self.swa_model is not None and self.swa_scheduler is not None
            self.swa_model.load_state_dict(state["swa_model"])
            self.swa_scheduler.load_state_dict(state["swa_scheduler"])
        self.stop_reason = state.get("stop_reason", "epochs")
        self.epoch, self.history = state["epoch"], state["history"]
        self.best_score, self.best_epoch = state["best_score"], state["best_epoch"]
        self.head_best = state.get("head_best", self.head_best)
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        log.info("resumed %s at epoch %d", self.run_dir, self.epoch)
