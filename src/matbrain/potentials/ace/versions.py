"""Versioned ACE potentials: ``potentials/potential_gen_NN.{yace,yaml,asi,json}``, never overwritten.

A finished fit is published with pacemaker's own tools: ``pace_yaml2yace`` makes the ``.yace``
that LAMMPS and ``PyACECalculator`` evaluate, ``pace_activeset`` makes the active set ``.asi``
from the training data, needed for the extrapolation grade γ (which works on the ``.yaml``).
The JSON beside them records the fit's metrics, the store rows it was trained and validated on
and why it stopped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matbrain.potentials.ace.fit import AceFit, tool_path
from matbrain.potentials.ace.reference import (
    pacemaker_reference_energies,
    set_yace_reference_energies,
)

NAME = re.compile(r"^potential_gen_(\d+)\.yace$")


@dataclass(frozen=True)
class PotentialVersion:
    generation: int
    yace: Path
    yaml: Path
    asi: Path

    @property
    def metrics_file(self) -> Path:
        return self.yace.with_suffix(".json")

    def metrics(self) -> dict[str, Any]:
        return json.loads(self.metrics_file.read_text())


def version_paths(folder: Path, generation: int) -> PotentialVersion:
    stem = folder / f"potential_gen_{generation:02d}"
    return PotentialVersion(generation, stem.with_suffix(".yace"), stem.with_suffix(".yaml"),
                            stem.with_suffix(".asi"))  # fmt: skip


def list_versions(folder: Path) -> list[PotentialVersion]:
    """Published versions (those with their metrics JSON), oldest first."""
    found = []
    for path in folder.glob("potential_gen_*.yace"):
        m = NAME.match(path.name)
        if m and path.with_suffix(".json").exists():
            found.append(version_paths(folder, int(m.group(1))))
    return sorted(found, key=lambda v: v.generation)


def _tool(name: str) -> str:
    exe = tool_path(name)
    if exe is None:
        raise ImportError(f"{name} not found: it comes with python-ace==0.4.0rc1 (see the README)")
    return exe


def _run(args: list[str], cwd: Path) -> None:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-8:])
        raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}):\n{tail}")


def provenance() -> dict[str, Any]:
    """What every artifact records (as the run folders do): package versions and git commit."""
    from importlib import metadata

    from matbrain import __version__
    from matbrain.common.runs import git_commit

    versions: dict[str, str | None] = {}
    for package in ("python-ace", "tensorpotential", "tensorflow", "numpy", "ase"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"matbrain_version": __version__, "git_commit": git_commit(), "packages": versions}


def yaml_to_yace(yaml_path: Path, yace_path: Path) -> None:
    """pacemaker's ``pace_yaml2yace``, then the reference energies of the ``.yaml`` metadata
    written into the ``.yace`` (see :mod:`matbrain.potentials.ace.reference`)."""
    _run([_tool("pace_yaml2yace"), str(yaml_path.resolve()), "-o", str(yace_path.resolve())],
         yace_path.parent)  # fmt: skip
    e0s = pacemaker_reference_energies(yaml_path)
    if e0s:
        set_yace_reference_energies(yace_path, e0s)


def publish(
    fit: AceFit, folder: Path, generation: int, extra: dict[str, Any] | None = None
) -> PotentialVersion:
    """Turn ``fit`` into version ``generation`` in ``folder``; refuses to overwrite a version."""
    folder.mkdir(parents=True, exist_ok=True)
    version = version_paths(folder, generation)
    if version.metrics_file.exists() or version.yace.exists():
        raise FileExistsError(
            f"{version.yace.name} already exists in {folder}: versions are never overwritten"
        )
    staging = folder / f".staging_gen_{generation:02d}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    yaml_path = staging / version.yaml.name
    shutil.copyfile(fit.potential_yaml, yaml_path)
    yaml_to_yace(yaml_path, staging / version.yace.name)
    train_data = (fit.workdir / "train.pckl.gzip").resolve()
    # all training atoms span the active set (the default leaves out badly fitted atoms, and its
    # error-based mode is not available in batch mode for large sets)
    _run(
        [_tool("pace_activeset"), "-d", str(train_data), yaml_path.name, "--all-atoms", "-V"],
        staging,
    )
    split = json.loads((fit.workdir / "split.json").read_text())
    record = {
        "generation": generation,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **provenance(),
        "fit_folder": str(fit.workdir),
        "source_potential": fit.potential_yaml.name,
        **fit.metrics(),
        **split,
        **(extra or {}),
    }
    (staging / version.metrics_file.name).write_text(json.dumps(record, indent=2))
    # the JSON goes last: a version counts as published only when its JSON is there
    for path in (version.yace, version.yaml, version.asi, version.metrics_file):
        (staging / path.name).replace(path)
    staging.rmdir()
    return version
