"""Registry of property-model classes by name, imported only when asked for."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matbrain.models.base import PropertyModel

_MODELS: dict[str, str] = {
    "cgcnn": "matbrain.models.cgcnn:CGCNN",
    "e3nn": "matbrain.models.e3nn_net:E3nnNet",
    # universal interatomic potentials as frozen encoders (models/backbone.py)
    "chgnet": "matbrain.models.backbone:BackboneNet",
    "sevennet": "matbrain.models.backbone:BackboneNet",
    "sevennet-l3i5": "matbrain.models.backbone:BackboneNet",
    "chgnet+sevennet": "matbrain.models.backbone:BackboneNet",
    "chgnet+sevennet-l3i5": "matbrain.models.backbone:BackboneNet",
    "mace": "matbrain.models.backbone:BackboneNet",
}
MODEL_NAMES = tuple(_MODELS)


class UnknownModelError(ValueError):
    pass


def get_model_class(name: str) -> type[PropertyModel]:
    if name not in _MODELS:
        raise UnknownModelError(f"unknown model {name!r}; valid models: {', '.join(MODEL_NAMES)}")
    module, cls = _MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)
