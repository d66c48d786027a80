"""What every property model shares: presets, hyperparameters, multi-task heads, pooling."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from ase import Atoms
from torch import nn

from matbrain.data.batching import GraphBatch, collate
from matbrain.data.graphs import GraphConfig, build_graph
from matbrain.models.bond_descriptors import batch_bond_descriptors, graph_bond_descriptors
from matbrain.models.composition_kernel import (
    CompositionKernel,
    kernel_points,
)
from matbrain.models.linear_baseline import (
    N_ELEMENTS,
    batch_composition,
    composition_matrix,
    fit_ridge,
    set_linear,
)


def scatter_mean(src: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """Mean of rows of ``src`` grouped by ``index`` into ``n`` groups (graph read-out)."""
    total = torch.zeros((n, src.shape[1]), dtype=src.dtype, device=src.device).index_add_(
        0, index, src
    )
    count = torch.zeros(n, dtype=src.dtype, device=src.device).index_add_(
        0, index, torch.ones_like(index, dtype=src.dtype)
    )
    return total / count.clamp(min=1).unsqueeze(1)


def scatter_sum(src: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    return torch.zeros((n, *src.shape[1:]), dtype=src.dtype, device=src.device).index_add_(
        0, index, src
    )


class MultiTaskHeads(nn.Module):
    """One small MLP per property on a shared graph embedding; output (B, n_properties)."""

    def __init__(self, in_dim: int, n_properties: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)  # outside the heads: saved models keep their keys
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(in_dim, hidden), nn.SiLU(), nn.Linear(hidden, 1))
            for _ in range(n_properties)
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.dropout(h)
        return torch.cat([head(h) for head in self.heads], dim=1)


def n_kernel_points(config: Any, data: Any) -> int:
    """How many training and validation structures the composition kernel keeps (0: no kernel).
    Streamed graphs (shards) have no per-structure values to train against: no kernel there."""
    if data is None or config.composition_kernel == "off" or not isinstance(data.graphs, list):
        return 0
    from matbrain.data.splits import TRAIN, VAL

    labelled = data.split.mask(TRAIN, data.targets) | data.split.mask(VAL, data.targets)
    return len(kernel_points(np.asarray(labelled.any(1))))


def constructor_arguments(values: dict[str, Any]) -> dict[str, Any]:
    """A model constructor's own arguments, from its ``locals()`` taken first thing: what the
    artifact records as its hyperparameters (``n_properties`` is passed on its own)."""
    return {k: v for k, v in values.items() if k not in ("self", "__class__", "n_properties")}


class PropertyModel(nn.Module):
    """Base class: a shared encoder, one head per property, normalised outputs.

    Subclasses define ``name``, ``PRESETS`` (name -> hyperparameters) and ``encode`` returning a
    (n_graphs, embed_dim) invariant embedding.
    """

    name: str  # the registry name; a backbone model names its backbone per instance
    PRESETS: ClassVar[dict[str, dict[str, Any]]]
    heads: nn.Module  # set by each subclass
    composition: nn.ModuleList  # only with the composition baseline
    kernel: CompositionKernel  # only with the composition kernel
    # (n_properties, ...) buffers: a specialist fine-tuned from this model takes its row
    PER_PROPERTY_BUFFERS: ClassVar[tuple[str, ...]] = (
        "kernel.coef",
        "kernel.gamma",
        "kernel.bond_weight",
    )

    def __init__(
        self,
        n_properties: int,
        composition_baseline: bool = False,
        composition_kernel: str = "off",
        n_kernel_points: int = 0,
        kernel_descriptors: str = "cgcnn",
        **hyperparameters: Any,
    ) -> None:
        super().__init__()
        self.n_properties = n_properties
        self.hyperparameters = dict(hyperparameters)
        if composition_kernel != "off" and n_kernel_points > 0:
            # per property, kernel ridge on the composition (and, for graph networks, the bond
            # statistics), fitted in closed form (initialize_from_data); see
            # matbrain.models.composition_kernel
            self.hyperparameters.update(
                composition_kernel=composition_kernel,
                n_kernel_points=n_kernel_points,
                kernel_descriptors=kernel_descriptors,
            )
            self.kernel = CompositionKernel(
                n_properties, n_kernel_points, composition_kernel, kernel_descriptors
            )
        if composition_baseline:
            # per property, a linear function of the atom fractions, started at its ridge fit
            # (initialize_from_data): the network learns the residual
            self.hyperparameters["composition_baseline"] = True
            layers = [nn.Linear(N_ELEMENTS, 1) for _ in range(n_properties)]
            for layer in layers:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
            self.composition = nn.ModuleList(layers)

    @classmethod
    def from_preset(cls, preset: str, n_properties: int, **overrides: Any) -> PropertyModel:
        if preset not in cls.PRESETS:
            raise ValueError(
                f"unknown {cls.name} preset {preset!r}; valid: {', '.join(cls.PRESETS)}"
            )
        return cls(n_properties=n_properties, **{**cls.PRESETS[preset], **overrides})

    @classmethod
    def from_config(cls, config: Any, n_properties: int, data: Any = None) -> PropertyModel:
        """A new model for a ``TrainConfig`` (its preset, cutoff and dropout)."""
        return cls.from_preset(
            config.preset,
            n_properties=n_properties,
            cutoff=config.cutoff_A,
            dropout=config.dropout,
            composition_baseline=config.composition_baseline,
            composition_kernel=config.composition_kernel,
            n_kernel_points=n_kernel_points(config, data),
            kernel_descriptors="composition+structure+chemistry",
            atom_features=config.atom_features,
        )

    @classmethod
    def dataset_inputs(cls, dataset: Any, config: Any, progress: bool = True) -> Any:
        """The inputs of every structure of a dataset, cached: ``.graphs`` (id -> input),
        ``.skipped`` (id -> reason) and ``.key`` (the cache key); in shards that training streams
        from when the config sets ``graph_shard_size``."""
        from matbrain.data.cache import process_dataset
        from matbrain.data.shards import process_dataset_sharded

        if getattr(config, "graph_shard_size", None):
            return process_dataset_sharded(
                dataset, config.graph_config(), config.graph_shard_size, progress=progress
            )
        return process_dataset(dataset, config.graph_config(), progress=progress)

    def initialize_from_data(self, data: Any) -> None:
        """Start the composition baseline (when there is one) at its fit on the training split,
        then fit the composition kernel (when there is one) to what the baseline leaves."""
        if not hasattr(self, "composition") and not hasattr(self, "kernel"):
            return
        from matbrain.data.splits import TRAIN, VAL

        design = composition_matrix([g.numbers for g in data.graphs])
        train = data.split.mask(TRAIN, data.targets)
        val = data.split.mask(VAL, data.targets)
        residuals = data.normalized.astype(float).copy()
        for j, layer in enumerate(getattr(self, "composition", [])):
            assert isinstance(layer, nn.Linear)
            if train[:, j].any():
                w, b, _ = fit_ridge(design, data.normalized[:, j], train[:, j], val[:, j])
                set_linear(layer, w, b)
                residuals[:, j] -= design @ w + b
        if hasattr(self, "kernel"):
            bonds = None
            if self.kernel.needs_bonds:
                bonds = graph_bond_descriptors(
                    data.graphs, cell=self.kernel.needs_cell, chemistry=self.kernel.needs_chemistry
                )
            values = self.kernel.fit(design, residuals, train, val, bonds=bonds)
            self.attach_kernel_values(data, values)

    def attach_kernel_values(self, data: Any, values: np.ndarray) -> None:
        """Give each structure of ``data`` its composition-kernel values (leave-one-out for the
        training and validation structures): what the network trains and validates against.
        New structures have none and the model computes them (``forward``)."""
        for i, x in enumerate(data.graphs):
            data.graphs[i] = self.with_kernel(x, values[i])

    @staticmethod
    def with_kernel(x: Any, values: np.ndarray) -> Any:
        return dataclasses.replace(x, kernel=values)

    def add_kernel(self, out: torch.Tensor, batch: Any, fractions: torch.Tensor) -> torch.Tensor:
        """``out`` plus the composition kernel's part, when the model has one."""
        if not hasattr(self, "kernel"):
            return out
        part = batch.kernel
        if part is None:
            bonds = self.kernel_structure(batch) if self.kernel.needs_bonds else None
            part = self.kernel(fractions, bonds)
        return out + part.to(out.dtype)

    def kernel_structure(self, batch: Any) -> torch.Tensor:
        """The bond (and cell) statistics the kernel part compares, of a batch's structures."""
        return batch_bond_descriptors(
            batch, cell=self.kernel.needs_cell, chemistry=self.kernel.needs_chemistry
        )

    def independent_heads(self) -> list[tuple[str, ...]] | None:
        """Per property, the state-dict prefixes of its own weights, when nothing else trains
        (each head can then keep its own best epoch); None when heads share an encoder."""
        return None

    def head_parameters(self) -> list[nn.Parameter]:
        """Per-property parameters (heads, composition baseline); the rest is the encoder."""
        params = list(self.heads.parameters())
        if hasattr(self, "composition"):
            params += list(self.composition.parameters())
        return params

    def encode(self, batch: GraphBatch) -> torch.Tensor:
        raise NotImplementedError

    # The inputs of a model: crystal graphs by default. A model with other inputs (a backbone's
    # features) overrides both, and the trainer and predictor follow.
    collate: Callable[..., Any] = staticmethod(collate)

    @classmethod
    def make_inputs(
        cls, structures: Sequence[Atoms], graph: GraphConfig, hyperparameters: dict[str, Any]
    ) -> list[Any]:
        """One model input per structure (raises BadStructureError for an unusable one)."""
        return [build_graph(a, graph) for a in structures]

    @staticmethod
    def elements_present(x: Any) -> np.ndarray:
        """The distinct atomic numbers of one model input."""
        return np.unique(x.numbers)

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        """Normalised predictions, (n_graphs, n_properties)."""
        out = self.heads(self.encode(batch))
        if not hasattr(self, "composition") and not hasattr(self, "kernel"):
            return out
        x = batch_composition(batch.numbers, batch.graph_index, batch.n_graphs)
        if hasattr(self, "composition"):
            out = out + torch.cat([layer(x) for layer in self.composition], dim=1)
        return self.add_kernel(out, batch, x)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
