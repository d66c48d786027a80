"""End to end on the bundled subset: smoke training of both algorithms, resume after interruption."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from matbrain.common.runs import read_registry
from matbrain.models.artifact import load_artifact
from matbrain.training.config import resolve_config
from matbrain.training.pipeline import run_training

pytestmark = pytest.mark.slow

TINY = {"epochs": 3, "max_samples": 80, "batch_size": 16}


@pytest.mark.parametrize("algorithm", ["cgcnn", "e3nn"])
def test_smoke_training_writes_a_complete_run(algorithm, tmp_path):
    cfg = resolve_config(algorithm, "smoke", overrides={**TINY, "output_root": str(tmp_path)})
    result = run_training(cfg, progress=False)
    run = result.run_dir
    assert run.parent.name == f"multitask_smoke_{algorithm}"
    for name in (
        "best.pt",
        "checkpoint.pt",
        "history.json",
        "config.yaml",
        "metrics.json",
        "metrics.csv",
        "summary.json",
        "model.json",
        "plots/learning_curves.png",
        "plots/parity_formation_energy.png",
        "predictions/predictions.csv",
    ):
        assert (run / name).exists(), name
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert all(np.isfinite(h["train_loss"]) for h in history)
    rows = {r["property"]: r for r in json.loads((run / "metrics.json").read_text())}
    assert set(rows) == set(cfg.properties)
    fe = rows["formation_energy"]
    assert (
        fe["n_test"] > 0
        and np.isfinite(fe["test_mae"])
        and np.isclose(fe["test_mae_over_mad"], fe["test_mae"] / fe["test_mad"])
    )
    registry = read_registry(tmp_path)
    assert len(registry) == 1 and registry[0]["algorithm"] == algorithm
    assert registry[0]["test_mae"]["formation_energy"] == pytest.approx(fe["test_mae"])
    loaded = load_artifact(run)
    assert (
        loaded.metadata["model"] == algorithm
        and [p.name for p in loaded.properties] == cfg.properties
    )


def test_training_learns_formation_energy(tmp_path):
    """Not a sanity-only run: a few epochs must beat the predict-the-mean baseline on validation."""
    cfg = resolve_config(
        "cgcnn",
        "smoke",
        overrides={
            "epochs": 15,
            "properties": ["formation_energy"],
            "output_root": str(tmp_path),
            "batch_size": 32,
            "lr": 3e-3,
            "max_samples": 600,
        },
    )
    result = run_training(cfg, progress=False)
    row = result.metrics[0]
    assert row["test_mae"] < 0.85 * row["baseline_train_mean_mae"], row


def test_a_run_scores_elements_as_predict_does(tmp_path):
    """A one-element crystal's formation energy is >= 0 (its own reference): the run's metrics
    and predictions apply the same identities as ``matbrain predict``."""
    import pandas as pd

    from matbrain.data.jarvis import load_jarvis_records
    from matbrain.data.structures import jarvis_atoms_to_ase
    from matbrain.inference import Predictor

    # no kernel part: its training and validation values are leave-one-out, predict's are not
    overrides = {"epochs": 1, "properties": ["formation_energy"], "max_samples": 300,
                 "composition_kernel": "off", "output_root": str(tmp_path)}  # fmt: skip
    result = run_training(resolve_config("cgcnn", "smoke", overrides=overrides), progress=False)
    frame = pd.read_csv(result.run_dir / "predictions" / "predictions.csv")
    records = {r["jid"]: r for r in load_jarvis_records()}
    atoms = [jarvis_atoms_to_ase(records[i]["atoms"]) for i in frame["id"]]
    elemental = np.array([len(set(a.numbers)) == 1 for a in atoms])
    assert elemental.sum() >= 2
    assert (frame["formation_energy_pred"][elemental] >= 0).all()
    assert (frame["formation_energy_pred"][~elemental] < 0).any()  # a compound keeps its sign
    picked = [a for a, e in zip(atoms, elemental, strict=True) if e]
    again = Predictor.from_path(result.run_dir).predict_atoms(picked)[:, 0]
    np.testing.assert_allclose(again, frame["formation_energy_pred"][elemental], atol=1e-4)


def test_a_run_zeroes_piezo_where_symmetry_forbids_it_as_predict_does(tmp_path):
    """Centrosymmetric crystals (and point group 432) have no piezoelectric tensor: the run's
    predictions and ``matbrain predict`` both give them 0, the other crystals keep the model's
    value."""
    import pandas as pd

    from matbrain.data.jarvis import load_jarvis_records
    from matbrain.data.structures import jarvis_atoms_to_ase
    from matbrain.data.symmetry import piezo_vanishes
    from matbrain.inference import Predictor

    overrides = {"epochs": 2, "properties": ["piezo_max_dij"], "composition_kernel": "off",
                 "output_root": str(tmp_path)}  # fmt: skip
    result = run_training(resolve_config("cgcnn", "smoke", overrides=overrides), progress=False)
    frame = pd.read_csv(result.run_dir / "predictions" / "predictions.csv")
    records = {r["jid"]: r for r in load_jarvis_records()}
    atoms = [jarvis_atoms_to_ase(records[i]["atoms"]) for i in frame["id"]]
    forbidden = piezo_vanishes(atoms)
    assert 0 < forbidden.sum() < len(atoms)
    assert (frame["piezo_max_dij_true"][forbidden] == 0).all()  # the DFT labels agree
    assert (frame["piezo_max_dij_pred"][forbidden] == 0).all()
    assert (frame["piezo_max_dij_pred"][~forbidden] > 0).all()
    again = Predictor.from_path(result.run_dir).predict_atoms(atoms)[:, 0]
    np.testing.assert_allclose(again, frame["piezo_max_dij_pred"], atol=1e-4)


class _Interrupt:
    def __init__(self, after: int) -> None:
        self.after = after

    def __call__(self, trainer, record) -> None:
        if record["epoch"] == self.after:
            raise KeyboardInterrupt


def test_resume_after_interruption_continues_exactly(tmp_path):
    torch.set_num_threads(1)  # bitwise-reproducible reductions for the comparison below
    overrides = {**TINY, "epochs": 4, "output_root": str(tmp_path / "a")}
    cfg = resolve_config("e3nn", "smoke", overrides=overrides)
    full = run_training(cfg, progress=False)

    cfg_b = resolve_config(
        "e3nn", "smoke", overrides={**overrides, "output_root": str(tmp_path / "b")}
    )
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg_b, callbacks=[_Interrupt(after=2)], progress=False)
    run_dir = next((tmp_path / "b" / cfg_b.run_group()).glob("run_*"))
    assert not (run_dir / "summary.json").exists()
    assert len(json.loads((run_dir / "history.json").read_text())) == 2
    resumed = run_training(cfg_b, run_dir=run_dir, progress=False)

    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    for a, b in zip(full.history, resumed.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    wa = torch.load(full.run_dir / "checkpoint.pt", weights_only=False)["model"]
    wb = torch.load(resumed.run_dir / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


def test_resume_refuses_a_different_config(tmp_path):
    cfg = resolve_config(
        "cgcnn", "smoke", overrides={**TINY, "epochs": 1, "output_root": str(tmp_path)}
    )
    run = run_training(cfg, progress=False).run_dir
    log = (run / "logs" / "train.log").read_text()  # the run's log, not only its warnings
    assert "started" in log and "INFO" in log
    other = resolve_config(
        "cgcnn", "smoke", overrides={**TINY, "epochs": 2, "output_root": str(tmp_path)}
    )
    with pytest.raises(ValueError, match="changed: epochs: 1 -> 2"):
        run_training(other, run_dir=run, progress=False)


def test_a_run_does_not_depend_on_random_numbers_drawn_while_preparing_data(tmp_path, monkeypatch):
    """A cold feature cache loads a pretrained featurizer, which draws from torch's and numpy's
    global generators; a warm cache does not. Both must train the same model."""
    import matbrain.training.pipeline as pipeline

    torch.set_num_threads(1)
    real_prepare = pipeline.prepare_data

    def run(folder, draws: bool):
        def prepare(*args, **kwargs):
            out = real_prepare(*args, **kwargs)
            if draws:  # what loading a featurizer's weights does to the global state
                torch.randn(1000)
                np.random.rand(1000)
            return out

        monkeypatch.setattr(pipeline, "prepare_data", prepare)
        overrides = {**TINY, "epochs": 1, "output_root": str(tmp_path / folder)}
        result = run_training(resolve_config("cgcnn", "smoke", overrides=overrides), progress=False)
        return torch.load(result.run_dir / "checkpoint.pt", weights_only=False)["model"]

    warm, cold = run("warm", draws=False), run("cold", draws=True)
    assert all(torch.equal(warm[k], cold[k]) for k in warm)
