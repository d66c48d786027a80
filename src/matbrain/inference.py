"""Predict properties of structures from CIF/POSCAR files with a trained model artifact."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from ase import Atoms

from matbrain.common.devices import pick_device
from matbrain.data.graphs import BadStructureError, GraphConfig, build_graph
from matbrain.data.structures import StructureReadError, is_structure_file, read_structure
from matbrain.data.symmetry import piezo_vanishes
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

    def inputs_key(self) -> str:
        """Models with equal keys build equal inputs for a structure (an ensemble shares them)."""
        hyper = self.loaded.metadata["hyperparameters"]
        return json.dumps([type(self.model).__name__, repr(self.loaded.graph), hyper],
                          sort_keys=True, default=str)  # fmt: skip

    def make_inputs(self, structures: list[Atoms]) -> list[Any]:
        return self.model.make_inputs(
            structures, self.loaded.graph, self.loaded.metadata["hyperparameters"]
        )

    @torch.no_grad()
    def predict_atoms(self, structures: list[Atoms], inputs: list[Any] | None = None) -> np.ndarray:
        """(n_structures, n_properties) predictions; raises BadStructureError for a bad structure.
        ``inputs``: the model's inputs for ``structures``, when already built."""
        if inputs is None:
            inputs = self.make_inputs(structures)
        out = []
        for i in range(0, len(inputs), self.batch_size):
            batch = self.model.collate(inputs[i : i + self.batch_size]).to(self.device)
            out.append(self.model(batch).cpu().numpy())
        normalized = np.concatenate(out) if out else np.zeros((0, len(self.columns)))
        return physical_predictions(
            self.loaded.normalizer.denormalize(normalized),
            self.loaded.properties,
            [a.numbers for a in structures],
            piezo_vanishes(structures) if "piezo_max_dij" in self.columns else None,
        )

    def predict_files(self, paths: list[Path]) -> PredictionResult:
        """Predict every readable file; unreadable or unphysical ones are reported and skipped."""
        names, structures, skipped = read_structures(paths, [self.loaded.graph])
        values = self.predict_atoms(structures) if structures else np.zeros((0, len(self.columns)))
        return PredictionResult(_table(values, self.columns, names, structures), skipped)


def read_structures(
    paths: list[Path], graphs: list[GraphConfig]
) -> tuple[list[Path], list[Atoms], dict[str, str]]:
    """The files that read and make a graph under every one of ``graphs``; the others by name
    with the reason."""
    names, structures, skipped = [], [], {}
    for path in paths:
        try:
            atoms = read_structure(path)
            for graph in graphs:
                build_graph(atoms, graph)
        except (StructureReadError, BadStructureError, FileNotFoundError) as exc:
            skipped[path.name] = str(exc)
            log.info("skipped %s: %s", path.name, exc)  # the caller reports it (once)
            continue
        names.append(path)
        structures.append(atoms)
    return names, structures, skipped


def _table(
    values: np.ndarray, columns: list[str], names: list[Path], structures: list[Atoms]
) -> pd.DataFrame:
    table = pd.DataFrame(values, columns=columns)
    table.insert(0, "formula", [a.get_chemical_formula() for a in structures])
    table.insert(0, "file", [p.name for p in names])
    return table


class EnsemblePredictor:
    """Several models of the same properties as one: the mean of their predictions, and their
    spread (standard deviation over the models, ``{property}_std`` columns) as an uncertainty.

    Models trained with different seeds err differently; their mean is more accurate than a
    typical member (SevenNet-l3i5 heads on formation energy, bundled benchmark: 0.0358 eV/atom
    for one model, 0.0350 for the mean of three seeds, 0.0347 of six).
    """

    def __init__(self, members: list[Predictor]) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one model")
        first = members[0]
        for other in members[1:]:
            if other.units() != first.units():
                raise ValueError(
                    "the models of an ensemble must predict the same properties in the same "
                    f"units: {first.units()} against {other.units()}"
                )
        self.members = members

    @classmethod
    def from_paths(cls, paths: list[str | Path], device: str = "auto") -> EnsemblePredictor:
        return cls([Predictor.from_path(p, device=device) for p in paths])

    @property
    def columns(self) -> list[str]:
        return self.members[0].columns

    def units(self) -> dict[str, str]:
        return self.members[0].units()

    def predict_each(self, structures: list[Atoms]) -> np.ndarray:
        """(models, n_structures, n_properties), in the first model's column order; models that
        build the same inputs (seeds of one recipe: the same backbone features) build them once."""
        inputs: dict[str, list[Any]] = {}
        out = []
        for m in self.members:
            key = m.inputs_key()
            if key not in inputs:
                inputs[key] = m.make_inputs(structures)
            values = m.predict_atoms(structures, inputs[key])
            out.append(values[:, [m.columns.index(c) for c in self.columns]])  # first's order
        return np.stack(out)

    def predict_atoms(self, structures: list[Atoms]) -> np.ndarray:
        """(n_structures, n_properties): the mean over the models."""
        return self.predict_each(structures).mean(0)

    def predict_files(self, paths: list[Path]) -> PredictionResult:
        """The mean per property and, with two models or more, their standard deviation."""
        names, structures, skipped = read_structures(paths, [m.loaded.graph for m in self.members])
        columns = self.columns
        if not structures:
            return PredictionResult(_table(np.zeros((0, len(columns))), columns, [], []), skipped)
        each = self.predict_each(structures)
        table = _table(each.mean(0), columns, names, structures)
        if len(self.members) > 1:
            for j, name in enumerate(columns):
                table[f"{name}_std"] = each[:, :, j].std(0, ddof=1)
        return PredictionResult(table, skipped)


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
