"""Typed, validated configuration of a property-model training run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from matbrain.data.graphs import GraphConfig
from matbrain.properties import resolve_properties
from matbrain.training.levels import level_preset


class TrainConfig(BaseModel):
    """Everything that defines a run. Frozen: derived settings are computed once, up front."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: Literal["e3nn", "cgcnn"] = "e3nn"
    level: Literal["smoke", "lite", "std", "pro", "max"] = "smoke"
    properties: list[str] = Field(
        default_factory=lambda: [p.name for p in resolve_properties(None)]
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
    loss: Literal["mse", "l1", "huber"] = "mse"
    property_weights: dict[str, float] = Field(default_factory=dict)
    grad_clip: float = Field(10.0, gt=0)
    device: str = "auto"
    output_root: str = "models"

    @field_validator("properties")
    @classmethod
    def _known_properties(cls, names: list[str]) -> list[str]:
        return [p.name for p in resolve_properties(names)]

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


def resolve_config(
    algorithm: str = "e3nn",
    level: str = "smoke",
    yaml_path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """Layer package defaults < level preset < user YAML < overrides (``None`` values ignored)."""
    values: dict[str, Any] = {"algorithm": algorithm, "level": level}
    values.update(level_preset(algorithm, level))
    if yaml_path is not None:
        path = Path(yaml_path)
        if not path.exists():
            raise FileNotFoundError(f"config file not found: {path}")
        user = yaml.safe_load(path.read_text()) or {}
        if not isinstance(user, dict):
            raise ValueError(f"{path}: expected a mapping of config keys")
        if "algorithm" in user or "level" in user:
            # the level of the YAML decides the preset layer below it
            values.update(level_preset(user.get("algorithm", algorithm), user.get("level", level)))
        values.update(user)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return TrainConfig(**values)
