"""Resuming refuses a changed configuration and says which keys changed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml


def changed_keys(
    saved: Mapping[str, Any], current: Mapping[str, Any], prefix: str = ""
) -> list[str]:
    """Dotted names of the keys whose values differ (nested mappings compared key by key)."""
    out = []
    for key in sorted(set(saved) | set(current), key=str):
        a, b = saved.get(key), current.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += changed_keys(a, b, f"{name}.")
        elif a != b:
            out.append(name)
    return out


def refuse_changed_config(
    saved_path: Path, current: Mapping[str, Any], what: str, may_change: Iterable[str] = ()
) -> None:
    """Raise when ``saved_path`` (the YAML a run or loop was started with) differs from
    ``current`` in any key other than ``may_change`` (a name covers its nested keys)."""
    if not saved_path.exists():
        return
    saved = yaml.safe_load(saved_path.read_text()) or {}
    allowed = tuple(may_change)
    changed = [
        k
        for k in changed_keys(saved, dict(current))
        if not any(k == m or k.startswith(f"{m}.") for m in allowed)
    ]
    if changed:
        details = ", ".join(f"{k}: {_get(saved, k)!r} -> {_get(current, k)!r}" for k in changed)
        raise ValueError(
            f"{what} was started with another configuration ({saved_path}); changed: {details}. "
            "Resume with the same settings, or start a new run."
        )


def _get(values: Mapping[str, Any], dotted: str) -> Any:
    value: Any = values
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value
