"""Specialists fine-tuned from a multi-task model: its encoder, one property's head and scale.

The specialist keeps the source's architecture and hyperparameters, its encoder weights, the
head of the chosen property (the other heads are dropped) and that property's normalisation, so
its first forward pass reproduces the multi-task prediction. The trainer can then freeze the
encoder for some epochs (``freeze_encoder_epochs``) and/or train it at a lower learning rate
(``encoder_lr_factor``).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from matbrain.models.artifact import LoadedModel, load_artifact, resolve_model_path
from matbrain.models.base import PropertyModel
from matbrain.models.normalizer import Normalizer

_HEAD_KEY = re.compile(r"^(heads\.\w+|composition)\.(\d+)\.(.*)$")


@lru_cache(maxsize=4)
def _load(path: str) -> LoadedModel:
    return load_artifact(path)


def finetune_source(config: Any) -> LoadedModel:
    """The source model reduced to the one property of ``config`` (checked)."""
    path = resolve_model_path(config.finetune_from)
    source = _load(str(path.resolve()))
    kind = source.metadata["model"]
    if kind != config.algorithm:
        raise ValueError(
            f"{path} is a {kind} model; fine-tune it with --algorithm {kind} "
            f"(this run is {config.algorithm})"
        )
    if len(config.properties) != 1:
        raise ValueError("fine-tuning from a multi-task model trains one property (--property)")
    names = [p.name for p in source.properties]
    name = config.properties[0]
    if name not in names:
        raise ValueError(f"{path} was not trained on {name!r}; it predicts {', '.join(names)}")
    j = names.index(name)
    return LoadedModel(
        model=source.model,
        properties=[source.properties[j]],
        normalizer=Normalizer(mean=[source.normalizer.mean[j]], std=[source.normalizer.std[j]]),
        graph=source.graph,
        metadata={**source.metadata, "property_index": j},
    )


def finetune_record(config: Any) -> dict[str, Any]:
    """Provenance of the source: path, file hash and the head taken."""
    path = resolve_model_path(config.finetune_from)
    source = finetune_source(config)
    return {
        "path": str(path.resolve()),
        "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        "model": source.metadata["model"],
        "property": config.properties[0],
        "property_index": source.metadata["property_index"],
    }


def finetune_model(config: Any) -> PropertyModel:
    """A one-property model holding the source's encoder and the chosen property's head."""
    source = finetune_source(config)
    j = source.metadata["property_index"]
    hyper = {**source.metadata["hyperparameters"]}
    if "dropout" in hyper:
        hyper["dropout"] = config.dropout
    model = type(source.model)(n_properties=1, **hyper)
    state = {}
    per_property = getattr(model, "PER_PROPERTY_BUFFERS", ())
    for key, value in source.model.state_dict().items():
        match = _HEAD_KEY.match(key)
        if key in per_property:  # (n_properties, ...) buffers: the chosen property's row
            state[key] = value[j : j + 1]
        elif match is None:
            state[key] = value
        elif int(match.group(2)) == j:
            state[f"{match.group(1)}.0.{match.group(3)}"] = value
    model.load_state_dict(state)
    return model
