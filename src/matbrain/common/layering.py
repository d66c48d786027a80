"""Configuration layering, one rule for every command: defaults < level preset < YAML < flags.

A flag the user did not give is ``None`` and never overrides anything below it; a flag given
always wins. The level itself (and the algorithm) follow the same rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_config_yaml(path: str | Path | None) -> dict[str, Any]:
    """The user's YAML of config keys ({} without a file); a clear error when it is missing or
    not a mapping."""
    if path is None:
        return {}
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file not found: {path}")
    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of config keys")
    return loaded


def given(values: dict[str, Any] | None) -> dict[str, Any]:
    """The flags that were given (``None`` means not given)."""
    return {k: v for k, v in (values or {}).items() if v is not None}


def pick(key: str, flags: dict[str, Any], user: dict[str, Any], default: Any) -> Any:
    """A key that decides a preset (level, algorithm): flag over YAML over the default."""
    value = flags.get(key)
    if value is None:
        value = user.get(key)
    return default if value is None else value


def layer(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """Merge mappings, later ones winning; ``None`` values never override."""
    merged: dict[str, Any] = {}
    for values in layers:
        merged.update(given(values))
    return merged
