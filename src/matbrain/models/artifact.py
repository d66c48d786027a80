"""Deployable model artifacts: self-describing, loaded through the registry, never a pickled module.

A ``best.pt`` holds only plain data and tensors (loadable with ``weights_only=True``): the model
name, its hyperparameters, the properties with units, the target normalisation, the graph
settings, the package version and the state dict. ``model.json`` beside it repeats the metadata
for humans and other tools.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from matbrain import __version__
from matbrain.common.files import atomic_path
from matbrain.data.graphs import GraphConfig
from matbrain.models.base import PropertyModel
from matbrain.models.normalizer import Normalizer
from matbrain.models.registry import get_model_class
from matbrain.properties import Property, property_from_metadata

ARTIFACT_FORMAT = "matbrain.property_model"
ARTIFACT_VERSION = 1


@dataclass
class LoadedModel:
    model: PropertyModel
    properties: list[Property]
    normalizer: Normalizer
    graph: GraphConfig
    metadata: dict[str, Any]


def save_artifact(
    path: Path,
    model: PropertyModel,
    properties: list[Property],
    normalizer: Normalizer,
    graph: GraphConfig,
    extra: dict[str, Any] | None = None,
) -> None:
    metadata = {
        "format": ARTIFACT_FORMAT,
        "format_version": ARTIFACT_VERSION,
        "model": model.name,
        "hyperparameters": model.hyperparameters,
        "properties": [p.name for p in properties],
        "units": {p.name: p.unit for p in properties},
        "descriptions": {p.name: p.description for p in properties},
        "normalizer": normalizer.to_dict(),
        "graph": graph.to_dict(),
        "matbrain_version": __version__,
        **(extra or {}),
    }
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({**metadata, "state_dict": state}, tmp)
    path.with_name("model.json").write_text(json.dumps(metadata, indent=2))


def resolve_model_path(path: str | Path) -> Path:
    """A run folder (its ``best.pt``) or a ``.pt`` file."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.exists():
        raise FileNotFoundError(f"model not found: {path} (pass a run folder or its best.pt)")
    return path


def load_artifact(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    path = resolve_model_path(path)
    data = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(data, dict) or data.get("format") != ARTIFACT_FORMAT:
        raise ValueError(f"{path}: not a matbrain property-model artifact")
    if data["format_version"] > ARTIFACT_VERSION:
        raise ValueError(
            f"{path}: artifact format {data['format_version']} is newer than this matbrain reads"
        )
    properties = [
        property_from_metadata(n, data["units"], data.get("descriptions", {}))
        for n in data["properties"]
    ]
    model = get_model_class(data["model"])(n_properties=len(properties), **data["hyperparameters"])
    model.load_state_dict(data.pop("state_dict"))
    model.to(device).eval()
    return LoadedModel(
        model=model,
        properties=properties,
        normalizer=Normalizer(**data["normalizer"]),
        graph=GraphConfig(**data["graph"]),
        metadata=data,
    )
