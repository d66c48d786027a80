"""The level presets of property-model training: the one place the tables live.

Layering order (later wins): package defaults < level preset < user YAML < command-line flags.
"""

from __future__ import annotations

from typing import Any

LEVEL_NAMES = ("smoke", "lite", "std", "pro", "max")

ALGORITHM_DEFAULTS: dict[str, dict[str, Any]] = {
    "e3nn": {"preset": "small", "batch_size": 16, "lr": 1e-3},
    "cgcnn": {"preset": "small", "batch_size": 64, "lr": 1e-3},
}

LEVELS: dict[str, dict[str, dict[str, Any]]] = {
    "e3nn": {
        "smoke": {"preset": "small", "epochs": 5, "batch_size": 8, "lr": 2e-3},
        "lite": {"preset": "small", "epochs": 2, "batch_size": 8, "lr": 2e-3, "max_samples": 64},
        "std": {"preset": "medium", "epochs": 100, "batch_size": 16, "lr": 1e-3},
        "pro": {"preset": "large", "epochs": 500, "batch_size": 4, "lr": 5e-4},
        "max": {"preset": "large", "epochs": 800, "batch_size": 4, "lr": 3e-4},
    },
    "cgcnn": {
        "smoke": {"preset": "small", "epochs": 5, "max_samples": 800},
        "lite": {"preset": "small", "epochs": 40, "max_samples": 3000},
        "std": {"preset": "medium", "epochs": 200},
        "pro": {"preset": "large", "epochs": 300},
        "max": {"preset": "large", "epochs": 500, "batch_size": 160},
    },
}

LEVEL_NOTES = {
    "smoke": "end-to-end sanity run",
    "lite": "fixed tiny run on a tiny subset",
    "std": "standard",
    "pro": "long, large model",
    "max": "longest",
}


def level_preset(algorithm: str, level: str) -> dict[str, Any]:
    if algorithm not in LEVELS:
        raise ValueError(f"unknown algorithm {algorithm!r}; valid: {', '.join(LEVELS)}")
    if level not in LEVELS[algorithm]:
        raise ValueError(f"unknown level {level!r}; valid: {', '.join(LEVEL_NAMES)}")
    return {**ALGORITHM_DEFAULTS[algorithm], **LEVELS[algorithm][level]}


def levels_table(algorithm: str) -> str:
    """Plain-text table of one algorithm's levels (used by ``--help`` and the docs)."""
    lines = [f"{'level':<6} {'preset':<7} {'epochs':>6} {'batch':>5} {'lr':>7} {'max samples':>11}"]
    for level in LEVEL_NAMES:
        p = level_preset(algorithm, level)
        lines.append(
            f"{level:<6} {p['preset']:<7} {p['epochs']:>6} {p['batch_size']:>5} {p['lr']:>7g} {str(p.get('max_samples', 'all')):>11}"
        )
    return "\n".join(lines)
