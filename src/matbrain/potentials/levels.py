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


# ACE (linear least squares by default; ``solver: pacemaker`` runs pacemaker's nonlinear fit with
# the same basis). Basis size per element and cutoff grow with the level; on mlearn-size sets
# (~250 structures, 2 cores) std takes about a minute per element.
ACE_LEVELS: dict[str, dict[str, Any]] = {
    "smoke": {"functions_per_element": 30, "cutoff_A": 4.5, "max_iter": 20},
    "lite": {"functions_per_element": 150, "cutoff_A": 5.0, "max_iter": 100},
    "std": {"functions_per_element": 300, "cutoff_A": 5.0, "max_iter": 300},
    "pro": {"functions_per_element": 600, "cutoff_A": 5.5, "max_iter": 600},
    # a richer radial basis (20 radial functions for pairs, l up to 5) and pacemaker batches of
    # 25 structures (at 100 its fit of 1,200 functions needs ~24 GB)
    "max": {"functions_per_element": 1200, "cutoff_A": 5.5, "max_iter": 1000,
            "nradmax_by_orders": [20, 10, 6, 4, 2], "lmax_by_orders": [0, 5, 4, 3, 2],
            "batch_size": 25},
    "competition": {"functions_per_element": 600, "cutoff_A": 5.5, "max_iter": 600},
}  # fmt: skip


def ace_level(level: str) -> dict[str, Any]:
    if level not in ACE_LEVELS:
        raise ValueError(f"unknown ACE level {level!r}; valid: {', '.join(MACE_LEVEL_NAMES)}")
    return dict(ACE_LEVELS[level])


def ace_levels_table() -> str:
    from matbrain.potentials.config import AceTrainConfig  # it imports this module

    fields = AceTrainConfig.model_fields
    lines = [f"{'level':<12} {'functions':>9} {'cutoff':>6} {'iter.':>5} radial n / max l by order"]
    for name in MACE_LEVEL_NAMES:
        p = ACE_LEVELS[name]
        nradmax = p.get("nradmax_by_orders", fields["nradmax_by_orders"].default)
        lmax = p.get("lmax_by_orders", fields["lmax_by_orders"].default)
        radial = f"{'-'.join(map(str, nradmax))} / {'-'.join(map(str, lmax))}"
        lines.append(
            f"{name:<12} {p['functions_per_element']:>9} {p['cutoff_A']:>6} {p['max_iter']:>5} "
            f"{radial}"
        )
    return "\n".join(lines)
