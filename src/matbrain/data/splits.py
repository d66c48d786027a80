"""Train/validation/test splits, per label.

Every (structure, property) label has a role. For JARVIS data the role comes from that
property's official JARVIS-Leaderboard split, so test MAEs are measured on the same materials
as the published numbers; a structure can then train one head and test another. For other data
a fixed-seed 80/10/10 split of structures applies to all of their labels.
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
    kind: Literal["leaderboard", "random"]
    seed: int | None

    def mask(self, role: int, targets: np.ndarray) -> np.ndarray:
        """Boolean (n, p) mask of labels that exist and have ``role``."""
        return (self.roles == role) & ~np.isnan(targets)

    def structures_with(self, role: int, targets: np.ndarray) -> np.ndarray:
        """Indices of structures that carry at least one label of ``role``."""
        return np.flatnonzero(self.mask(role, targets).any(axis=1))

    def summary(self, dataset: CrystalDataset) -> dict[str, Any]:
        counts = {
            p.name: {ROLE_NAMES[r]: int(self.mask(r, dataset.targets)[:, j].sum()) for r in ROLE_NAMES}
            for j, p in enumerate(dataset.properties)
        }
        return {"kind": self.kind, "seed": self.seed, "labels": counts}


def random_split(n: int, n_properties: int, seed: int, fractions: tuple[float, float] = (0.8, 0.1)) -> Split:
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


def leaderboard_split(dataset: CrystalDataset) -> Split:
    """Each property's official split; labels of materials outside it are left UNUSED."""
    roles = np.full((len(dataset), len(dataset.properties)), UNUSED, dtype=np.int8)
    for j, prop in enumerate(dataset.properties):
        lookup = leaderboard_roles(prop.key)
        roles[:, j] = [lookup.get(sid, UNUSED) for sid in dataset.ids]
    return Split(roles=roles, kind="leaderboard", seed=None)


def make_split(dataset: CrystalDataset, seed: int, kind: Literal["auto", "leaderboard", "random"] = "auto") -> Split:
    if kind == "auto":
        kind = "leaderboard" if dataset.is_jarvis else "random"
    if kind == "leaderboard":
        if not dataset.is_jarvis:
            raise ValueError("the leaderboard split needs JARVIS ids; use split='random' for this dataset")
        return leaderboard_split(dataset)
    return random_split(len(dataset), len(dataset.properties), seed)
