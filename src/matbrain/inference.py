"""Predict properties of structures from CIF/POSCAR files with a trained model artifact."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from ase import Atoms

from matbrain.common.devices import pick_device
from matbrain.data.graphs import BadStructureError, build_graph
from matbrain.data.structures import StructureReadError, is_structure_file, read_structure
from matbrain.models.artifact import LoadedModel, load_artifact
from matbrain.properties import physical_predictions

log = logging.getLogger(__name__)


@dataclass
class PredictionResult:
    """One row per predicted structure; ``skipped`` maps file names to the reason."""

    table: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)


class Predictor:
    """Loads a model once and predicts all of its properties, in physical units."""

    def __init__(
        self, loaded: LoadedModel, device: torch.device | None = None, batch_size: int = 32
    ) -> None:
        self.loaded = loaded
        self.device = device or torch.device(pick_device("auto"))
        self.model = loaded.model.to(self.device).eval()
        self.batch_size = batch_size

    @classmethod
    def from_path(cls, path: str | Path, device: str = "auto") -> Predictor:
        dev = torch.device(pick_device(device))
        return cls(load_artifact(path, device=dev), device=dev)

    @property
    def columns(self) -> list[str]:
        return [p.name for p in self.loaded.properties]

    def units(self) -> dict[str, str]:
        """Units of the predicted properties (a user-defined target keeps its own)."""
        return {p.name: p.unit for p in self.loaded.properties}

    @torch.no_grad()
    def predict_atoms(self, structures: list[Atoms]) -> np.ndarray:
        """(n_structures, n_properties) predictions; raises BadStructureError for a bad structure."""
        inputs = self.model.make_inputs(
            structures, self.loaded.graph, self.loaded.metadata["hyperparameters"]
        )
        out = []
        for i in range(0, len(inputs), self.batch_size):
            batch = self.model.collate(inputs[i : i + self.batch_size]).to(self.device)
            out.append(self.model(batch).cpu().numpy())
        normalized = np.concatenate(out) if out else np.zeros((0, len(self.columns)))
        return physical_predictions(
            self.loaded.normalizer.denormalize(normalized),
            self.loaded.properties,
            [a.numbers for a in structures],
        )

    def predict_files(self, paths: list[Path]) -> PredictionResult:
        """Predict every readable file; unreadable or unphysical ones are reported and skipped."""
        names, structures, skipped = [], [], {}
        for path in paths:
            try:
                atoms = read_structure(path)
                build_graph(atoms, self.loaded.graph)
            except (StructureReadError, BadStructureError, FileNotFoundError) as exc:
                skipped[path.name] = str(exc)
                log.info("skipped %s: %s", path.name, exc)  # the caller reports it (once)
                continue
            names.append(path)
            structures.append(atoms)
        values = self.predict_atoms(structures) if structures else np.zeros((0, len(self.columns)))
        table = pd.DataFrame(values, columns=self.columns)
        table.insert(0, "formula", [a.get_chemical_formula() for a in structures])
        table.insert(0, "file", [p.name for p in names])
        return PredictionResult(table=table, skipped=skipped)


def structure_files(folder: str | Path) -> list[Path]:
    """Structure files of a folder, sorted; a clear error for a missing or empty folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if is_structure_file(p))
    if not files:
        raise ValueError(
            f"{folder}: no structure files (*.cif, POSCAR*, *.vasp, *.extxyz) in this folder"
        )
    return files
