"""Fine-tuning a MACE base model (trained on EMT Cu in this session) on 20 DFT Cu structures."""

from __future__ import annotations

import json

import ase.io
import pytest

from emt_data import MLEARN
from matbrain.potentials.calculators import load_potential
from matbrain.potentials.config import resolve_finetune_config
from matbrain.potentials.data import read_labelled
from matbrain.potentials.evaluate import error_metrics, predict
from matbrain.potentials.pipeline import train_potential


def test_finetune_on_20_dft_structures_lowers_held_out_force_error(trained_run, tmp_path):
    small = tmp_path / "cu_dft_20.xyz"
    ase.io.write(small, ase.io.read(MLEARN / "mlearn_Cu_train.extxyz.gz", ":20"), format="extxyz")
    held_out = read_labelled(MLEARN / "mlearn_Cu_test.extxyz.gz")[:10]

    cfg = resolve_finetune_config(
        overrides={
            "data": str(small),
            "base_model": str(trained_run.model_path),
            "epochs": 8,
            "batch_size": 64,  # larger than the set: must be clamped, not crash or train on nothing
            "output_root": str(tmp_path / "models"),
        }
    )
    assert (cfg.lr, cfg.forces_weight) == (None, 100.0)  # None: the engine's default (MACE 0.01)
    result = train_potential(cfg, progress=False)

    base = error_metrics(predict(load_potential(trained_run.model_path).calc, held_out))
    tuned = error_metrics(predict(load_potential(result.model_path).calc, held_out))
    assert tuned["forces_eV_per_A"]["mae"] < 0.9 * base["forces_eV_per_A"]["mae"]

    run = result.run_dir
    sizes = json.loads((run / "data.json").read_text())["sizes"]
    assert sizes["valid"] >= 1 and sizes["train"] + sizes["valid"] + sizes["test"] == 20
    base_e0 = json.loads((trained_run.run_dir / "e0s.json").read_text())
    assert json.loads((run / "e0s.json").read_text()) == pytest.approx(base_e0)
    log = (run / "logs" / "mace.log").read_text()
    assert "--batch_size=" + str(sizes["train"]) in log and "--lr=0.01" in log
    summary = json.loads((run / "summary.json").read_text())
    assert summary["kind"] == "finetune" and summary["base_model"] == str(trained_run.model_path)


def test_finetune_refuses_elements_the_base_model_lacks(trained_run, tmp_path):
    small = tmp_path / "si.xyz"
    ase.io.write(small, ase.io.read(MLEARN / "mlearn_Si_train.extxyz.gz", ":6"), format="extxyz")
    cfg = resolve_finetune_config(
        overrides={
            "data": str(small),
            "base_model": str(trained_run.model_path),
            "output_root": str(tmp_path / "models"),
        }
    )
    with pytest.raises(ValueError, match="no E0 for Si"):
        train_potential(cfg, progress=False)


def test_foundation_model_offline_says_how_to_pass_a_file(tmp_path, monkeypatch):
    from matbrain.potentials.calculators import resolve_mace_mp

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no cached download
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # nothing listens: the download fails fast
    with pytest.raises(FileNotFoundError, match="pass its path instead"):
        resolve_mace_mp("small")
