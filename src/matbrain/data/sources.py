"""Resolve a dataset name or path to a ``CrystalDataset``."""

from __future__ import annotations

from pathlib import Path

from matbrain.data.dataset import CrystalDataset
from matbrain.data.folder import folder_dataset
from matbrain.data.jarvis import BUNDLED, jarvis_dataset
from matbrain.properties import Property


def load_dataset(source: str | Path, properties: list[Property]) -> CrystalDataset:
    """``bundled`` (default), ``dft_3d`` (online, jarvis-tools), a dft_3d JSON file, or a folder with ``id_prop.csv``."""
    if str(source) in (BUNDLED, "dft_3d", "dft_3d_2021"):
        return jarvis_dataset(properties, source)
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(
            f"dataset not found: {source} (use 'bundled', 'dft_3d', a dft_3d .json/.json.gz/.json.zip file or a folder with id_prop.csv)"
        )
    if path.is_dir():
        return folder_dataset(path, properties)
    return jarvis_dataset(properties, path)
