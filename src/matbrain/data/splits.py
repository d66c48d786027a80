"""Train/validation/test splits, per label.

Every (structure, property) label has a role. For JARVIS data the role comes from that
property's official JARVIS-Leaderboard split, so test MAEs are measured on the same materials
as the published numbers. The leaderboard draws each property's split independently, so in a
multi-task run a test material of one property is usually a training material of another; the
default ``leaderboard`` split therefore removes every label of a structure that is a test
material of any trained property from training and validation (no test structure is ever seen),
while ``leaderboard-overlap`` keeps them (more training data, but the encoder has seen the test
structures through other properties). For other data a fixed-seed 80/10/10 split of structures
applies to all of their labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from matbrain.data.dataset import CrystalDataset
from matbrain.data.jarvis import bundled_path, read_json_any

TRAIN, VAL, TEST, UNUSED = 0, 1, 2, -1
ROLE_NAMES = {TRAIN: "train", VAL: "val", TEST: "test"}


@dataclass
class Split:
    """roles : (n_structures, n_properties) int8 array of TRAIN/VAL/TEST/UNUSED."""

    roles: np.ndarray
    kind: Literal["leaderboard", "leaderboard-overlap", "random"]
    seed: int | None
    dropped_train_labels: int = 0

    def mask(self, role: int, targets: np.ndarray) -> np.ndarray:
        """Boolean (n, p) mask of labels that exist and have ``role``."""
        return (self.roles == role) & ~np.isnan(targets)

    def structures_with(self, role: int, targets: np.ndarray) -> np.ndarray:
        """Indices of structures that carry at least one label of ``role``."""
        return np.flatnonzero(self.mask(role, targets).any(axis=1))

    def summary(self, dataset: CrystalDataset) -> dict[str, Any]:
        counts = {
            p.name: {
                ROLE_NAMES[r]: int(self.mask(r, dataset.targets)[:, j].sum()) for r in ROLE_NAMES
            }
            for j, p in enumerate(dataset.properties)
        }
        return {
            "kind": self.kind,
            "seed": self.seed,
            "dropped_train_labels": self.dropped_train_labels,
            "labels": counts,
        }


def random_split(
    n: int, n_properties: int, seed: int, fractions: tuple[float, float] = (0.8, 0.1)
) -> Split:
    """Fixed-seed split of structures (80/10/10 by default), shared by all properties."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    role = np.full(n, TEST, dtype=np.int8)
    role[order[:n_train]] = TRAIN
    role[order[n_train : n_train + n_val]] = VAL
    return Split(roles=np.repeat(role[:, None], n_properties, axis=1), kind="random", seed=seed)


def leaderboard_roles(key: str) -> dict[str, int]:
    """jid -> role for one property, from the bundled official JARVIS-Leaderboard file."""
    data = read_json_any(bundled_path(f"leaderboard_splits/dft_3d_{key}.json.zip"))
    roles: dict[str, int] = {}
    for name, role in (("train", TRAIN), ("val", VAL), ("test", TEST)):
        for jid in data.get(name, {}):
            roles[jid] = role
    return roles


def leaderboard_split(dataset: CrystalDataset, strict: bool = True) -> Split:
    """Each property's official split; labels of materials outside it are left UNUSED.

    With ``strict`` the train/val labels of structures that are test materials of any property
    become UNUSED too, so that no test structure is seen in training.
    """
    roles = np.full((len(dataset), len(dataset.properties)), UNUSED, dtype=np.int8)
    for j, prop in enumerate(dataset.properties):
        lookup = leaderboard_roles(prop.key)
        roles[:, j] = [lookup.get(sid, UNUSED) for sid in dataset.ids]
    dropped = 0
    if strict:
        labelled = ~np.isnan(dataset.targets)
        test_structure = ((roles == TEST) & labelled).any(axis=1)
        leak = test_structure[:, None] & (roles != TEST) & (roles != UNUSED)
        dropped = int((leak & (roles == TRAIN) & labelled).sum())
        roles[leak] = UNUSED
    return Split(
        roles=roles,
        kind="leaderboard" if strict else "leaderboard-overlap",
        seed=None,
        dropped_train_labels=dropped,
    )


SplitKind = Literal["auto", "leaderboard", "leaderboard-overlap", "random"]


def make_split(dataset: CrystalDataset, seed: int, kind: SplitKind = "auto") -> Split:
    if kind == "auto":
        kind = "leaderboard" if dataset.is_jarvis else "random"
    if kind in ("leaderboard", "leaderboard-overlap"):
        if not dataset.is_jarvis:
            raise ValueError(
                "the leaderboard split needs JARVIS ids; use split='random' for this dataset"
            )
        return leaderboard_split(dataset, strict=kind == "leaderboard")
    if kind != "random":
        raise ValueError(
            f"unknown split {kind!r}; valid: auto, leaderboard, leaderboard-overlap, random"
        )
    return random_split(len(dataset), len(dataset.properties), seed)


def robust_outliers(values: np.ndarray, sigma: float) -> np.ndarray:
    """Boolean mask of values further than ``sigma`` robust standard deviations from the median.

    The robust standard deviation is 1.4826 x the median absolute deviation (the standard
    deviation for normally distributed data, but not pulled by the outliers themselves).
    """
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    median = np.median(values)
    spread = 1.4826 * np.median(np.abs(values - median))
    if spread == 0:
        return np.zeros(len(values), dtype=bool)
    return np.abs(values - median) > sigma * spread


def drop_outliers(
    split: Split, targets: np.ndarray, ids: list[str], names: list[str], sigma: float
) -> tuple[Split, dict[str, list[str]]]:
    """Drop training labels beyond ``sigma`` robust std of their property (validation and test
    labels are never touched). Returns the new split and the dropped ids per property."""
    roles = split.roles.copy()
    dropped: dict[str, list[str]] = {}
    train = split.mask(TRAIN, targets)
    for j, name in enumerate(names):
        rows = np.flatnonzero(train[:, j])
        out = rows[robust_outliers(targets[rows, j], sigma)]
        roles[out, j] = UNUSED
        dropped[name] = [ids[i] for i in out]
    new = Split(
        roles=roles,
        kind=split.kind,
        seed=split.seed,
        dropped_train_labels=split.dropped_train_labels,
    )
    return new, dropped
