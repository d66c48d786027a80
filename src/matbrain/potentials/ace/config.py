"""Typed ACE training settings and pacemaker's ``input.yaml`` written from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field


class AceTrainingConfig(BaseModel):
    """One pacemaker fit. ``kappa`` is the force share of the loss (energy weight 1 − kappa)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cutoff_A: float = Field(5.5, ge=3.0, le=8.0, description="radial cutoff (Å); 5–6 Å is usual")
    functions_per_element: int = Field(100, ge=1, description="basis size per element")
    kappa: float = Field(0.3, ge=0.0, le=1.0, description="force weight in the loss")
    l1_coeff: float = Field(1e-8, ge=0)
    l2_coeff: float = Field(1e-8, ge=0)
    max_iter: int = Field(200, ge=1)
    display_step: int = Field(10, ge=1, description="validation report every N iterations")
    batch_size: int = Field(100, ge=1)
    valid_fraction: float = Field(0.1, gt=0, lt=1)
    early_stopping_patience: int | None = Field(5, ge=1, description="validation reports")
    early_stopping_min_delta: float = Field(
        0.0, ge=0, description="eV/Å a validation force RMSE must improve by to count"
    )
    seed: int = 42
    start_potential: str | None = Field(
        None, description="pacemaker .yaml to continue from (its basis and coefficients)"
    )
    reference_energy: dict[str, float] | None = Field(
        None, description="E0 per element (eV) subtracted before fitting; None: pacemaker's 'auto'"
    )
    nradmax_by_orders: list[int] | None = Field(
        None, description="radial functions per body order (None: pacemaker's template)"
    )
    lmax_by_orders: list[int] | None = Field(None, description="max l per body order")


# pyace's white-list of functions that mix species stops at five orders (body order 6): a sixth
# order for two or more elements fails with "potential shape is too big"
MIXED_SPECIES_ORDERS = 5


def functions_by_orders(nradmax_by_orders: list[int], lmax_by_orders: list[int]) -> dict[str, Any]:
    """pacemaker's ``functions`` blocks for one radial basis: one-element functions take it whole,
    functions that mix elements its first five orders."""
    mixed = {"nradmax_by_orders": list(nradmax_by_orders[:MIXED_SPECIES_ORDERS]),
             "lmax_by_orders": list(lmax_by_orders[:MIXED_SPECIES_ORDERS])}  # fmt: skip
    return {
        "UNARY": {"nradmax_by_orders": list(nradmax_by_orders),
                  "lmax_by_orders": list(lmax_by_orders)},
        "BINARY": mixed,
        "ALL": mixed,
    }  # fmt: skip


# pacemaker's own template (active learning's fits use it)
PACEMAKER_TEMPLATE = {
    "UNARY": {"nradmax_by_orders": [15, 6, 4, 3, 2, 2], "lmax_by_orders": [0, 3, 3, 2, 2, 1]},
    "BINARY": {"nradmax_by_orders": [15, 6, 3, 2, 2, 1], "lmax_by_orders": [0, 3, 2, 1, 1, 0]},
    "ALL": {"nradmax_by_orders": [15, 3, 2, 1, 1], "lmax_by_orders": [0, 2, 2, 1, 1]},
}  # fmt: skip


def pacemaker_input(
    cfg: AceTrainingConfig, elements: list[str], train_file: str, test_file: str
) -> dict[str, Any]:
    """The ``input.yaml`` mapping (pacemaker's own keys)."""
    return {
        "seed": cfg.seed,
        "cutoff": cfg.cutoff_A,
        "metadata": {"origin": "matbrain"},
        "potential": {
            "deltaSplineBins": 0.001,
            "elements": list(elements),
            "embeddings": {
                "ALL": {
                    "npot": "FinnisSinclairShiftedScaled",
                    "fs_parameters": [1, 1, 1, 0.5],
                    "ndensity": 2,
                }
            },
            "bonds": {
                "ALL": {
                    "radbase": "SBessel",
                    "radparameters": [5.25],
                    "rcut": cfg.cutoff_A,
                    "dcut": 0.01,
                    "NameOfCutoffFunction": "cos",
                }
            },
            "functions": {
                "number_of_functions_per_element": cfg.functions_per_element,
                **(functions_by_orders(cfg.nradmax_by_orders, cfg.lmax_by_orders)
                   if cfg.nradmax_by_orders and cfg.lmax_by_orders else PACEMAKER_TEMPLATE),
            },
        },
        **({"potential": cfg.start_potential} if cfg.start_potential else {}),
        "data": {"filename": train_file, "test_filename": test_file, "reference_energy": cfg.reference_energy or "auto"},
        "fit": {
            "loss": {"kappa": cfg.kappa, "L1_coeffs": cfg.l1_coeff, "L2_coeffs": cfg.l2_coeff},
            "optimizer": "BFGS",
            "maxiter": cfg.max_iter,
            "repulsion": "auto",
        },
        "backend": {
            "evaluator": "tensorpot",
            "batch_size": cfg.batch_size,
            "display_step": cfg.display_step,
        },
    }  # fmt: skip


def write_input_yaml(
    cfg: AceTrainingConfig, elements: list[str], train_file: str, test_file: str, path: Path
) -> None:
    path.write_text(
        yaml.safe_dump(pacemaker_input(cfg, elements, train_file, test_file), sort_keys=False)
    )
