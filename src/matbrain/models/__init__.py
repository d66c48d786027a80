"""Property models, looked up by name in a lazy registry (``cgcnn``, ``e3nn``)."""

from matbrain.models.registry import MODEL_NAMES, get_model_class

__all__ = ["MODEL_NAMES", "get_model_class"]
