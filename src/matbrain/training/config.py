"""Typed, validated configuration of a property-model training run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from matbrain.common.layering import given, pick, read_config_yaml
from matbrain.data.graphs import GraphConfig
from matbrain.properties import Property, custom_property, resolve_properties
from matbrain.training.levels import ALGORITHMS, level_preset, specialist_preset


class TrainConfig(BaseModel):
    """Everything that defines a run. Frozen: derived settings are computed once, up front."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: str = "e3nn"  # one of levels.ALGORITHMS
    level: Literal["smoke", "lite", "std", "pro", "max", "competition"] = "smoke"
    properties: list[str] = Field(
        default_factory=lambda: [p.name for p in resolve_properties(None)]
    )
    target_unit: str | None = Field(
        None,
        description="unit of a user-defined target (folder datasets); set with a target name "
        "in `properties` that is not one of the nine JARVIS properties",
    )
    preset: str = "small"
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    max_samples: int | None = Field(
        None, ge=2, description="random fixed-seed subset of structures"
    )
    seed: int = 42
    dataset: str = Field(
        "bundled",
        description="'bundled', 'dft_3d' (jarvis-tools, online), a dft_3d JSON file or a folder with id_prop.csv",
    )
    split: Literal["auto", "leaderboard", "leaderboard-overlap", "random"] = "auto"
    cutoff_A: float = Field(6.0, gt=0)
    max_neighbors: int = Field(12, ge=1)
    graph_shard_size: int | None = Field(
        None,
        ge=1,
        description="cache graphs in shards of this many structures and stream training from "
        "them (bounded memory, for datasets larger than RAM); None: one file, loaded whole",
    )
    loss: Literal["mse", "l1", "huber"] = "mse"
    property_weights: dict[str, float] = Field(default_factory=dict)
    grad_clip: float = Field(10.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout in the property heads")
    composition_baseline: bool = Field(
        False,
        description="graph models: add a linear function of composition per property, started "
        "at its least-squares fit, so that the network learns the residual",
    )
    atom_features: Literal["learned", "cgcnn"] = Field(
        "cgcnn",
        description="graph models: start atoms from CGCNN's element descriptors (group, period, "
        "electronegativity, radius, ...; formation-energy test MAE 0.318 -> 0.247 for e3nn), or "
        "from a learned vector per element",
    )
    acc_steps: int = Field(1, ge=1, description="gradient accumulation: batches per optimizer step")
    ema_decay: float | None = Field(
        None, gt=0, lt=1, description="EMA of the weights; the EMA weights are validated and saved"
    )
    swa: bool = Field(False, description="stochastic weight averaging over the last part")
    swa_start: float = Field(0.75, gt=0, lt=1, description="fraction of epochs before SWA starts")
    swa_lr_factor: float = Field(0.25, gt=0, description="SWA learning rate = lr x this")
    outlier_sigma: float | None = Field(
        None, gt=0, description="drop training targets beyond k robust std (median/MAD)"
    )
    patience: int | None = Field(
        None, ge=1, description="early stopping: epochs without validation improvement"
    )
    scheduler: Literal["onecycle", "plateau"] = "onecycle"
    base_model: str | None = Field(
        None, description="backbone file for --algorithm mace (a local MACE .model)"
    )
    backbone_mode: Literal["frozen", "finetune"] = Field(
        "frozen",
        description="universal-potential backbone: frozen features, or fine-tuned end to end "
        "(chgnet; the encoder's lr is lr x encoder_lr_factor)",
    )
    backbone_layers: Literal["all", "last"] = Field(
        "all",
        description="universal-potential backbone (frozen): the invariant features of every "
        "message-passing layer, averaged over atoms and side by side (all), or of the last "
        "layers only (last: models before 2026-12-06); MACE always gives every layer's",
    )
    composition_kernel: Literal["auto", "on", "off"] = Field(
        "auto",
        description="every model: a part per property fitted in closed form by kernel ridge "
        "regression on the composition (statistics of its element properties) and, for graph "
        "networks, bond and cell statistics; the network learns what it leaves; auto keeps it "
        "where a validation check says it helps (a backbone: a stand-in gains over 5 %; a graph "
        "network: at most 0.85 of a linear fit's error on the composition)",
    )
    finetune_from: str | None = Field(
        None, description="multi-task run folder or best.pt to start a specialist from"
    )
    freeze_encoder_epochs: int = Field(0, ge=0, description="fine-tuning: encoder frozen for N")
    encoder_lr_factor: float = Field(1.0, gt=0, description="fine-tuning: encoder lr = lr x this")
    device: str = "auto"
    output_root: str = "models"

    @model_validator(mode="before")
    @classmethod
    def _known_properties(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("properties") is not None:
            if values.get("target_unit") is None:
                names = [p.name for p in resolve_properties(values["properties"])]
                values = {**values, "properties": names}
            elif len(values["properties"]) != 1:
                raise ValueError("a user-defined target (target_unit set) trains one property")
        return values

    @model_validator(mode="after")
    def _shards_for_graph_models(self) -> TrainConfig:
        if self.graph_shard_size is not None and self.algorithm not in ("e3nn", "cgcnn"):
            raise ValueError(
                f"graph_shard_size streams crystal graphs: it applies to e3nn and cgcnn, not to "
                f"{self.algorithm} (a backbone caches one small feature vector per structure)"
            )
        return self

    def property_list(self) -> list[Property]:
        """The trained properties: catalogue entries, or the user's own target."""
        if self.target_unit is not None:
            return [custom_property(self.properties[0], self.target_unit)]
        return resolve_properties(self.properties)

    @field_validator("algorithm")
    @classmethod
    def _known_algorithm(cls, algorithm: str) -> str:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {algorithm!r}; valid: {', '.join(ALGORITHMS)}")
        return algorithm

    @field_validator("property_weights")
    @classmethod
    def _known_weight_names(cls, weights: dict[str, float]) -> dict[str, float]:
        return (
            {
                p.name: w
                for p, w in zip(resolve_properties(list(weights)), weights.values(), strict=True)
            }
            if weights
            else {}
        )

    def graph_config(self) -> GraphConfig:
        return GraphConfig(cutoff_A=self.cutoff_A, max_neighbors=self.max_neighbors)

    def weights(self) -> list[float]:
        return [self.property_weights.get(p, 1.0) for p in self.properties]

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True).encode()).hexdigest()[
            :12
        ]

    def run_group(self) -> str:
        """Folder name of runs of this kind: ``multitask_<level>_<algo>`` or ``<prop>_<level>_<algo>``."""
        task = "multitask" if len(self.properties) > 1 else self.properties[0]
        return f"{task}_{self.level}_{self.algorithm}"

    def to_yaml(self, path: Path) -> None:
        path.write_text(yaml.safe_dump(self.model_dump(), sort_keys=False))

    @classmethod
    def from_yaml(cls, path: Path) -> TrainConfig:
        return cls(**(yaml.safe_load(Path(path).read_text()) or {}))


def _preset(algorithm: str, level: str, properties: Any) -> dict[str, Any]:
    """Specialist table for one property, multi-task table otherwise."""
    single = isinstance(properties, list) and len(properties) == 1 and properties != ["all"]
    if single or level == "competition":
        return specialist_preset(algorithm, level)
    return level_preset(algorithm, level)


def resolve_config(
    algorithm: str = "e3nn",
    level: str = "smoke",
    yaml_path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """Layer package defaults < level preset < user YAML < overrides (``None`` values ignored).

    One property selects the specialist table of the level, several the multi-task table.
    """
    overrides = given(overrides)
    user = read_config_yaml(yaml_path)
    # the level and properties that decide the preset layer: flags over YAML over arguments
    algorithm = pick("algorithm", overrides, user, algorithm)
    level = pick("level", overrides, user, level)
    properties = overrides.get("properties", user.get("properties"))
    values: dict[str, Any] = {"algorithm": algorithm, "level": level}
    values.update(_preset(algorithm, level, properties))
    values.update(user)
    values.update(overrides)
    values["algorithm"], values["level"] = algorithm, level
    return TrainConfig(**values)
