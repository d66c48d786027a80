"""MACE training levels: the one place the tables live (``--help`` and the README print them).

The first four columns are the project's specification; the architecture columns are ours and
grow with the level (``num_channels`` x ``max_L`` sets MACE's hidden irreps).
"""

from __future__ import annotations

from typing import Any

MACE_LEVEL_NAMES = ("smoke", "lite", "std", "pro", "max", "competition")

MACE_LEVELS: dict[str, dict[str, Any]] = {
    "smoke": {"epochs": 20, "batch_size": 16, "lr": 1e-3, "r_max_A": 4.5,
              "num_channels": 16, "max_L": 0, "correlation": 2},
    "lite": {"epochs": 100, "batch_size": 16, "lr": 5e-4, "r_max_A": 5.0,
             "num_channels": 32, "max_L": 0, "correlation": 3},
    "std": {"epochs": 300, "batch_size": 32, "lr": 3e-4, "r_max_A": 5.0,
            "num_channels": 64, "max_L": 1, "correlation": 3},
    "pro": {"epochs": 600, "batch_size": 32, "lr": 2e-4, "r_max_A": 5.5,
            "num_channels": 128, "max_L": 1, "correlation": 3},
    "max": {"epochs": 1000, "batch_size": 48, "lr": 1e-4, "r_max_A": 6.0,
            "num_channels": 128, "max_L": 2, "correlation": 3},
    "competition": {"epochs": 350, "batch_size": 32, "lr": 2.5e-4, "r_max_A": 5.5,
                    "num_channels": 128, "max_L": 1, "correlation": 3, "swa": True},
}  # fmt: skip


def mace_level(level: str) -> dict[str, Any]:
    if level not in MACE_LEVELS:
        raise ValueError(f"unknown MACE level {level!r}; valid: {', '.join(MACE_LEVEL_NAMES)}")
    return dict(MACE_LEVELS[level])


def mace_levels_table() -> str:
    lines = [
        f"{'level':<12} {'epochs':>6} {'batch':>5} {'lr':>7} {'r_max':>5} {'channels':>8} {'max_L':>5}"
    ]
    for name in MACE_LEVEL_NAMES:
        p = MACE_LEVELS[name]
        lines.append(
            f"{name:<12} {p['epochs']:>6} {p['batch_size']:>5} {p['lr']:>7g} {p['r_max_A']:>5} "
            f"{p['num_channels']:>8} {p['max_L']:>5}"
        )
    return "\n".join(lines)
