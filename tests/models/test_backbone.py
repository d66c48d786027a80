"""Universal potentials as property backbones: real pretrained weights, training, artifacts."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from ase.build import bulk

from matbrain.models.artifact import load_artifact
from matbrain.models.backbone import featurize
from matbrain.training.config import resolve_config
from matbrain.training.pipeline import run_training

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backbone", ["chgnet", "sevennet"])
def test_untouched_backbone_reproduces_the_potentials_own_energy(backbone):
    from matbrain.potentials.calculators import load_potential

    atoms = bulk("NaCl", "rocksalt", a=5.5)
    atoms.rattle(0.05, seed=1)
    inputs, reasons = featurize([atoms], backbone)
    assert inputs[0] is not None, reasons
    reference = atoms.copy()
    reference.calc = load_potential(backbone).calc
    own = reference.get_potential_energy() / len(reference)
    assert inputs[0].energy_per_atom == pytest.approx(own, abs=1e-4)
    assert np.all(np.isfinite(inputs[0].features)) and inputs[0].features.std() > 0


def test_chgnet_backbone_learns_and_saves_a_weights_only_artifact(tmp_path):
    cfg = resolve_config(
        "chgnet",
        "smoke",
        overrides={
            "properties": ["formation_energy"],
            "max_samples": 400,
            "output_root": str(tmp_path),
        },
    )
    result = run_training(cfg, progress=False)
    row = result.metrics[0]
    # the head starts at the least-squares fit of energy and composition: far below the mean
    assert row["test_mae"] < 0.5 * row["baseline_train_mean_mae"], row
    data = torch.load(result.run_dir / "best.pt", weights_only=True)
    assert data["model"] == "chgnet" and "CHGNet" in data["hyperparameters"]["backbone_version"]
    loaded = load_artifact(result.run_dir)
    assert loaded.metadata["hyperparameters"]["backbone"] == "chgnet"


def test_own_target_from_a_folder_trains_and_predicts_with_its_name_and_unit(tmp_path):
    from typer.testing import CliRunner

    from matbrain.cli.main import app
    from matbrain.inference import Predictor

    folder = tmp_path / "data"
    folder.mkdir()
    rows = []
    for i, a in enumerate(np.linspace(3.4, 4.6, 24)):
        atoms = bulk("Cu", "fcc", a=float(a))
        atoms.write(folder / f"cu{i}.cif")
        rows.append((f"cu{i}.cif", 140.0 * (3.6 / a) ** 4))  # a made-up stiffness-like target
    with open(folder / "id_prop.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "K_VRH"])
        writer.writerows(rows)

    runner = CliRunner()
    out = tmp_path / "models"
    common = ["--dataset", str(folder), "--algorithm", "chgnet", "--output-root", str(out)]
    missing = runner.invoke(app, ["train", *common, "--quiet"])
    assert missing.exit_code != 0 and "--target-name" in missing.output
    done = runner.invoke(app, ["train", *common, "--unit", "GPa", "--epochs", "5", "--quiet"])
    assert done.exit_code == 0, done.output
    run = next(out.glob("K_VRH_smoke_chgnet/run_*"))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["units"] == {"K_VRH": "GPa"} and str(folder.resolve()) in summary["dataset"]
    predictor = Predictor.from_path(run)
    assert predictor.columns == ["K_VRH"] and predictor.units() == {"K_VRH": "GPa"}
    listed = runner.invoke(app, ["runs", "--root", str(out), "--property", "K_VRH"])
    assert listed.exit_code == 0 and "K_VRH (GPa)" in listed.output
