"""Typed configs of potential training and fine-tuning (frozen, unknown keys rejected)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from matbrain.common.layering import given, layer, pick, read_config_yaml
from matbrain.potentials.data import parse_elements
from matbrain.potentials.levels import ace_level, mace_level


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
    test_fraction: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="share held back as a test set (0: score a test file with eval)",
    )
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
    algorithm: Literal["mace"] = "mace"
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
    devices: int = Field(
        1, ge=1, description="GPUs for mace-torch's own data-parallel training (torchrun)"
    )

    @classmethod
    def from_yaml(cls, path: Path) -> MaceTrainConfig:
        return cls(**yaml.safe_load(path.read_text()))


class AceTrainConfig(_Base):
    """An ACE fit: ``linear`` (python-ace's least-squares design matrices; energy weight and ridge
    strength chosen on validation when not given), ``pacemaker`` (its nonlinear BFGS fit) or
    ``linear+pacemaker`` (pacemaker refines the linear fit, radial functions included)."""

    kind: Literal["train"] = "train"
    algorithm: Literal["ace"] = "ace"
    level: Literal["smoke", "lite", "std", "pro", "max", "competition"] = "smoke"
    solver: Literal["linear", "pacemaker", "linear+pacemaker"] = "linear"
    functions_per_element: int = Field(30, ge=1, description="basis size per element")
    cutoff_A: float = Field(4.5, ge=2.0, le=9.0)
    nradmax_by_orders: list[int] = Field(
        [15, 6, 4, 3, 2, 2], description="radial functions per body order"
    )
    lmax_by_orders: list[int] = Field([0, 4, 3, 2, 2, 1], description="max l per body order")
    # linear ACE may leave it to the validation split (None), where MACE's field is a number
    energy_weight: float | None = Field(  # type: ignore[assignment]
        None,
        gt=0,
        description="linear: weight of per-atom energy rows vs force components "
        "(None: chosen on validation)",
    )
    ridge_alpha: float | None = Field(None, gt=0, description="linear: None = chosen on validation")
    stress_weight: float | None = Field(  # type: ignore[assignment]
        None,
        gt=0,
        description="linear, with stresses: weight of stress components (GPa) vs force "
        "components (eV/Å) (None: chosen on validation)",
    )
    kappa: float = Field(0.3, ge=0.0, le=1.0, description="pacemaker: force share of the loss")
    max_iter: int = Field(200, ge=1, description="pacemaker: BFGS iterations")
    batch_size: int = Field(
        100, ge=1, description="pacemaker: structures per batch (its memory grows with it)"
    )
    workers: int = Field(2, ge=1, description="processes building the design matrix")

    @classmethod
    def from_yaml(cls, path: Path) -> AceTrainConfig:
        return cls(**yaml.safe_load(path.read_text()))


class MaceFinetuneConfig(_Base):
    """Fine-tuning of a MACE base model (foundation model name or local ``.model``) on a small set."""

    kind: Literal["finetune"] = "finetune"
    base_model: str = Field(
        "MACE-MP-0:small",
        description="chgnet (offline), MACE-MP-0[:small|medium|large] (downloads) or a MACE .model",
    )
    epochs: int = Field(50, ge=1)
    batch_size: int = Field(4, ge=1)
    lr: float | None = Field(
        None, gt=0, description="None: the engine's default (MACE 0.01, CHGNet 1e-3, SevenNet 3e-4)"
    )
    ema: bool = True

    @classmethod
    def from_yaml(cls, path: Path) -> MaceFinetuneConfig:
        return cls(**yaml.safe_load(path.read_text()))


def resolve_mace_config(
    level: str | None = None, yaml_path: Path | None = None, overrides: dict[str, Any] | None = None
) -> MaceTrainConfig:
    """Defaults < level preset < user YAML < flags (``None`` flags are not set); the level is
    ``overrides["level"]`` over the YAML's over ``level`` over smoke."""
    user, flags = read_config_yaml(yaml_path), given(overrides)
    level = pick("level", flags, user, level or "smoke")
    return MaceTrainConfig(**layer(mace_level(level), user, flags, {"level": level}))


def resolve_ace_config(
    level: str | None = None, yaml_path: Path | None = None, overrides: dict[str, Any] | None = None
) -> AceTrainConfig:
    """Defaults < level preset < user YAML < flags, as :func:`resolve_mace_config`."""
    user, flags = read_config_yaml(yaml_path), given(overrides)
    level = pick("level", flags, user, level or "smoke")
    return AceTrainConfig(**layer(ace_level(level), user, flags, {"level": level}))


def resolve_finetune_config(
    yaml_path: Path | None = None, overrides: dict[str, Any] | None = None
) -> MaceFinetuneConfig:
    return MaceFinetuneConfig(**layer(read_config_yaml(yaml_path), overrides))
