"""Typed configs of potential training and fine-tuning (frozen, unknown keys rejected)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from matbrain.potentials.data import parse_elements
from matbrain.potentials.levels import mace_level


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data: str = Field(description="extxyz file/folder, ASE db, postgresql:// URL, or jarvis/dft_3d")
    elements: list[str] | None = Field(None, description="keep only structures of these elements")
    with_forces: bool = True
    with_stress: bool = False
    energy_key: str = "energy"
    forces_key: str = "forces"
    stress_key: str = "stress"
    max_structures: int | None = Field(
        None, ge=2, description="fixed-seed random subset of the data (quick runs)"
    )
    valid_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.1, ge=0, lt=1)
    energy_weight: float = Field(1.0, ge=0)
    forces_weight: float = Field(100.0, ge=0)
    stress_weight: float = Field(1.0, ge=0)
    dtype: Literal["float32", "float64"] = "float64"
    device: str = "auto"
    seed: int = 0
    output_root: str = "models"

    @field_validator("elements")
    @classmethod
    def _known_elements(cls, v: list[str] | None) -> list[str] | None:
        return parse_elements(v)

    def to_yaml(self, path: Path) -> None:
        path.write_text(yaml.safe_dump(self.model_dump(), sort_keys=False))

    def config_hash(self) -> str:
        blob = json.dumps(self.model_dump(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


class MaceTrainConfig(_Base):
    """A MACE fit from scratch. Level presets fill epochs, batch size, lr, r_max and the model size."""

    kind: Literal["train"] = "train"
    level: Literal["smoke", "lite", "std", "pro", "max", "competition"] = "smoke"
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(1e-3, gt=0)
    r_max_A: float = Field(4.5, gt=0)
    num_channels: int = Field(16, ge=1)
    max_L: int = Field(0, ge=0, le=3)
    correlation: int = Field(2, ge=1, le=4)
    num_interactions: int = Field(2, ge=1)
    swa: bool = False
    ema: bool = True

    @classmethod
    def from_yaml(cls, path: Path) -> MaceTrainConfig:
        return cls(**yaml.safe_load(path.read_text()))


class MaceFinetuneConfig(_Base):
    """Fine-tuning of a MACE base model (foundation model name or local ``.model``) on a small set."""

    kind: Literal["finetune"] = "finetune"
    base_model: str = Field(
        "MACE-MP-0:small", description="MACE-MP-0[:small|medium|large] or a .model path"
    )
    epochs: int = Field(50, ge=1)
    batch_size: int = Field(4, ge=1)
    lr: float = Field(0.01, gt=0)
    ema: bool = True

    @classmethod
    def from_yaml(cls, path: Path) -> MaceFinetuneConfig:
        return cls(**yaml.safe_load(path.read_text()))


def _layer(layers: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if v is not None})
    return merged


def _user_yaml(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    if not path.exists():
        raise FileNotFoundError(f"config file not found: {path}")
    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of config keys")
    return loaded


def resolve_mace_config(
    level: str, yaml_path: Path | None = None, overrides: dict[str, Any] | None = None
) -> MaceTrainConfig:
    """Defaults < level preset < user YAML < flags (``None`` flags are not set)."""
    user = _user_yaml(yaml_path)
    level = (overrides or {}).get("level") or user.get("level") or level
    return MaceTrainConfig(**_layer([mace_level(level), {"level": level}, user, overrides or {}]))


def resolve_finetune_config(
    yaml_path: Path | None = None, overrides: dict[str, Any] | None = None
) -> MaceFinetuneConfig:
    return MaceFinetuneConfig(**_layer([_user_yaml(yaml_path), overrides or {}]))
