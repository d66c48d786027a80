"""One real pacemaker fit on a small EMT-labelled Cu set (EMT: unit tests only)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emt_data import emt_cu_frames
from matbrain.active.ace.config import AceTrainingConfig
from matbrain.active.ace.fit import fit_ace, pacemaker_executable

pytestmark = pytest.mark.skipif(
    pacemaker_executable() is None, reason="pacemaker (python-ace) is not installed"
)


def test_real_pacemaker_fit_lowers_errors_and_reports_live(tmp_path):
    frames = emt_cu_frames(40)
    for i, a in enumerate(frames):
        a.info.update(db_id=i + 1, config_type="rattled")
    cfg = AceTrainingConfig(cutoff_A=5.0, functions_per_element=30, max_iter=15, display_step=5,
                            early_stopping_patience=None)  # fmt: skip
    seen = []
    fit = fit_ace(frames, cfg, tmp_path / "fit", on_point=seen.append)
    assert fit.potential_yaml.name == "output_potential.yaml" and fit.stopped_early is None
    assert (fit.n_train, fit.n_valid) == (36, 4)
    train = [p for p in seen if p.split == "train"]
    valid = [p for p in seen if p.split == "valid"]
    assert len(train) >= 15 and [p.iteration for p in valid][:3] == [0, 5, 10]
    assert train[-1].rmse_forces_eV_per_A < 0.5 * train[0].rmse_forces_eV_per_A
    assert valid[-1].rmse_forces_eV_per_A < valid[0].rmse_forces_eV_per_A
    split = json.loads((tmp_path / "fit" / "split.json").read_text())
    assert not set(split["train_db_ids"]) & set(split["valid_db_ids"])

    from pyace import PyACECalculator

    atoms = frames[0].copy()
    atoms.calc = PyACECalculator(str(fit.potential_yaml))
    assert np.isfinite(atoms.get_potential_energy()) and atoms.get_forces().shape == (8, 3)
