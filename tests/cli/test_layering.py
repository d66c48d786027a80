"""Every command layers defaults < level < --config YAML < flags: a flag not given never
overrides the YAML, a flag given always does (the level and algorithm included)."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from matbrain.cli.main import app

runner = CliRunner()


class Captured(Exception):
    pass


@pytest.fixture
def capture(monkeypatch):
    """The resolved config of a command, caught where it would start training."""
    seen = {}

    def stop(cfg, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen["cfg"] = cfg
        raise Captured

    import matbrain.cli.potential as potential_cli
    import matbrain.training.pipeline as training_pipeline

    monkeypatch.setattr(potential_cli, "_run", stop)
    monkeypatch.setattr(training_pipeline, "run_training", stop)

    def run(*args: str):  # type: ignore[no-untyped-def]
        with pytest.raises(Captured):
            runner.invoke(app, list(args), catch_exceptions=False)
        return seen["cfg"]

    return run


def _yaml(tmp_path, **values):  # type: ignore[no-untyped-def]
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def test_potential_train_mace(capture, tmp_path):
    config = _yaml(tmp_path, data="from_yaml.xyz", level="std", with_forces=False,
                   with_stress=True, epochs=7)  # fmt: skip
    cfg = capture("potential", "train", "--config", config)
    assert (cfg.data, cfg.level, cfg.with_forces, cfg.with_stress, cfg.epochs) == (
        "from_yaml.xyz", "std", False, True, 7)  # fmt: skip
    assert cfg.num_channels == 64  # the std preset under the YAML
    cfg = capture("potential", "train", "--config", config, "--level", "lite", "--with-forces",
                  "--without-stress", "--epochs", "3", "--data", "flag.xyz")  # fmt: skip
    assert (cfg.data, cfg.level, cfg.with_forces, cfg.with_stress, cfg.epochs) == (
        "flag.xyz", "lite", True, False, 3)  # fmt: skip
    assert cfg.num_channels == 32  # the lite preset: the flag's level decides it


def test_potential_train_ace(capture, tmp_path):
    config = _yaml(tmp_path, data="x.xyz", level="pro", functions_per_element=77)
    cfg = capture("potential", "train", "--algorithm", "ace", "--config", config)
    assert (cfg.level, cfg.functions_per_element, cfg.cutoff_A) == ("pro", 77, 5.5)
    cfg = capture("potential", "train", "--algorithm", "ace", "--config", config, "--level",
                  "smoke", "--functions", "12")  # fmt: skip
    assert (cfg.level, cfg.functions_per_element, cfg.cutoff_A) == ("smoke", 12, 4.5)


def test_potential_finetune(capture, tmp_path):
    config = _yaml(tmp_path, data="x.xyz", base_model="chgnet", with_stress=True, epochs=9)
    cfg = capture("potential", "finetune", "--config", config)
    assert (cfg.base_model, cfg.with_stress, cfg.epochs) == ("chgnet", True, 9)
    cfg = capture("potential", "finetune", "--config", config, "--base-model", "sevennet",
                  "--without-stress", "--epochs", "2")  # fmt: skip
    assert (cfg.base_model, cfg.with_stress, cfg.epochs) == ("sevennet", False, 2)


def test_property_train(capture, tmp_path):
    config = _yaml(tmp_path, algorithm="cgcnn", level="std", epochs=11)
    cfg = capture("train", "--config", config, "--all-properties")
    assert (cfg.algorithm, cfg.level, cfg.epochs) == ("cgcnn", "std", 11)
    cfg = capture("train", "--config", config, "--all-properties", "--algorithm", "e3nn",
                  "--level", "lite", "--epochs", "4")  # fmt: skip
    assert (cfg.algorithm, cfg.level, cfg.epochs) == ("e3nn", "lite", 4)


def test_data_is_required_somewhere(tmp_path):
    result = runner.invoke(app, ["potential", "train", "--config", _yaml(tmp_path, epochs=2)])
    assert result.exit_code == 2 and "--data is required" in result.output
