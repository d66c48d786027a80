from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from matbrain.training.config import resolve_config
from matbrain.training.levels import LEVELS, level_preset


def test_levels_exactly_as_specified():
    assert level_preset("e3nn", "smoke") == {
        "preset": "small",
        "epochs": 5,
        "batch_size": 8,
        "lr": 0.002,
    }
    assert (
        level_preset("e3nn", "pro")["epochs"],
        level_preset("e3nn", "pro")["batch_size"],
        level_preset("e3nn", "pro")["lr"],
    ) == (500, 4, 5e-4)
    assert (level_preset("e3nn", "max")["epochs"], level_preset("e3nn", "max")["lr"]) == (800, 3e-4)
    assert level_preset("e3nn", "lite")["epochs"] == 2
    assert level_preset("cgcnn", "smoke")["max_samples"] == 800
    assert (
        level_preset("cgcnn", "lite")["epochs"],
        level_preset("cgcnn", "lite")["max_samples"],
    ) == (40, 3000)
    assert (
        level_preset("cgcnn", "max")["batch_size"] == 160
        and level_preset("cgcnn", "max")["preset"] == "large"
    )
    assert set(LEVELS["e3nn"]) == set(LEVELS["cgcnn"]) == {"smoke", "lite", "std", "pro", "max"}


def test_layering_defaults_level_yaml_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"epochs": 7, "lr": 0.01, "properties": ["band_gap"]}))
    cfg = resolve_config("e3nn", "std", path, {"lr": 0.02, "batch_size": None})
    assert cfg.preset == "medium"  # level
    assert cfg.epochs == 7  # yaml over level
    assert cfg.lr == 0.02  # flag over yaml
    assert cfg.batch_size == 16  # None flags do not override
    assert cfg.properties == ["band_gap"]


def test_unknown_keys_and_names_are_rejected(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epoch: 3\n")
    with pytest.raises(ValidationError, match="epoch"):
        resolve_config("e3nn", "smoke", path)
    with pytest.raises(ValidationError, match="valid names"):
        resolve_config("e3nn", "smoke", overrides={"properties": ["gap"]})
    with pytest.raises(ValueError, match="unknown level"):
        resolve_config("e3nn", "huge")
    with pytest.raises(FileNotFoundError):
        resolve_config("e3nn", "smoke", tmp_path / "missing.yaml")
