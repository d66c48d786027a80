"""The CLI as a user runs it: exit codes, files written, clear errors for bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from matbrain.cli.main import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "cifs"
runner = CliRunner()

pytestmark = pytest.mark.slow


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("models")
    result = invoke(
        "train",
        "--algorithm",
        "cgcnn",
        "--level",
        "smoke",
        "--all-properties",
        "--epochs",
        "2",
        "--max-samples",
        "60",
        "--output-root",
        str(root),
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    assert "test MAE" in result.output and "formation_energy" in result.output
    return next((root / "multitask_smoke_cgcnn").glob("run_*"))


@pytest.mark.parametrize(
    "command", [[], ["train"], ["predict"], ["runs"], ["data", "process"], ["properties"]]
)
def test_every_command_has_help_with_an_example(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output


def test_predict_single_cif_prints_all_properties_with_units(trained):
    result = invoke(
        "predict", "--model", str(trained), "--cif", str(EXAMPLES / "JVASP-19_Te2Ti2.cif")
    )
    assert result.exit_code == 0, result.output
    for name in ("formation_energy", "bulk_modulus", "ehull"):
        assert name in result.output
    assert "eV/atom" in result.output and "GPa" in result.output


def test_predict_folder_to_csv_skips_unreadable_files(trained, tmp_path):
    folder = tmp_path / "cifs"
    shutil.copytree(EXAMPLES, folder)
    (folder / "broken.cif").write_text("data_x\n_cell_length_a 3.0\nnonsense\n")
    out = tmp_path / "preds.csv"
    result = invoke(
        "predict", "--model", str(trained / "best.pt"), "--dir", str(folder), "--output", str(out)
    )
    assert result.exit_code == 0, result.output
    assert sum("broken.cif" in line for line in result.output.splitlines()) == 1  # by name, once
    table = pd.read_csv(out)
    assert len(table) == len(list(EXAMPLES.glob("*.cif")))
    assert list(table.columns[:2]) == ["file", "formula"] and "spillage" in table.columns
    assert table.drop(columns=["file", "formula"]).notna().all().all()
    assert (table[["band_gap", "mbj_gap", "ehull", "spillage", "piezo_max_dij"]] >= 0).all().all()


def test_bad_inputs_give_clear_errors(trained, tmp_path):
    bad = tmp_path / "bad.cif"
    bad.write_text("this is not a cif\n")
    result = invoke("predict", "--model", str(trained), "--cif", str(bad))
    assert result.exit_code != 0 and "bad.cif" in result.output

    result = invoke("predict", "--model", str(trained), "--cif", str(tmp_path / "missing.cif"))
    assert result.exit_code == 2 and "not found" in result.output

    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("predict", "--model", str(trained), "--dir", str(empty))
    assert result.exit_code == 2 and "no structure files" in result.output

    result = invoke(
        "predict", "--model", str(tmp_path / "nomodel"), "--cif", str(EXAMPLES / "JVASP-934_Nb.cif")
    )
    assert result.exit_code == 2 and "model not found" in result.output

    result = invoke(
        "train", "--properties", "formation_energy,band_gapp", "--output-root", str(tmp_path)
    )
    assert (
        result.exit_code == 2
        and "unknown property 'band_gapp'" in result.output
        and "valid names" in result.output
    )
    assert not (tmp_path / "multitask_smoke_e3nn").exists()


def test_runs_lists_the_registry(trained):
    result = invoke("runs", "--root", str(trained.parents[1]), "--property", "formation_energy")
    assert result.exit_code == 0
    assert "cgcnn" in result.output and "smoke" in result.output


def test_data_process_reports_and_caches():
    first = invoke("data", "process", "--properties", "formation_energy")
    assert first.exit_code == 0, first.output
    assert "940 graphs" in first.output
    second = invoke("data", "process", "--properties", "formation_energy")
    assert "reused" in second.output


def test_resume_without_a_run_is_a_clear_error(tmp_path):
    result = invoke("train", "--resume", "--output-root", str(tmp_path))
    assert result.exit_code == 2 and "no unfinished run" in result.output


def test_unknown_property_error_is_one_clean_line():
    from typer.testing import CliRunner

    from matbrain.cli.main import app

    result = CliRunner().invoke(app, ["train", "--property", "foo"])
    assert result.exit_code == 2
    assert "error: unknown property 'foo'; valid names: formation_energy" in result.output


def test_predict_with_several_models_gives_their_mean_and_spread(trained, tmp_path):
    root = tmp_path / "models"
    for seed, props in (("7", ["--all-properties"]), ("8", ["--property", "formation_energy"])):
        result = invoke("train", "--algorithm", "cgcnn", "--level", "smoke", *props,
                        "--epochs", "2", "--max-samples", "60", "--seed", seed,
                        "--output-root", str(root), "--quiet")  # fmt: skip
        assert result.exit_code == 0, result.output
    other = next((root / "multitask_smoke_cgcnn").glob("run_*"))
    single = [tmp_path / "a.csv", tmp_path / "b.csv"]
    for model, out in zip((trained, other), single, strict=True):
        result = invoke("predict", "--model", str(model), "--dir", str(EXAMPLES),
                        "--output", str(out))  # fmt: skip
        assert result.exit_code == 0, result.output
    out = tmp_path / "ensemble.csv"
    result = invoke("predict", "--model", str(trained), "--model", str(other),
                    "--dir", str(EXAMPLES), "--output", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    a, b, both = (pd.read_csv(p) for p in (*single, out))
    assert list(both["file"]) == list(a["file"])
    for name in ("formation_energy", "bulk_modulus", "ehull"):
        # the CSVs keep 6 significant digits
        pd.testing.assert_series_equal(both[name], (a[name] + b[name]) / 2, rtol=1e-4,
                                       atol=1e-5, check_names=False)  # fmt: skip
        spread = (a[name] - b[name]).abs() / 2**0.5  # the standard deviation of two values
        # a spread computed from the rounded CSV values carries their rounding, ~1e-5 of the
        # values themselves (a 0.2 GPa spread between two moduli of ~100 GPa: +-1e-3)
        rounding = 1e-5 * (a[name].abs() + b[name].abs()) + 1e-6
        assert ((both[f"{name}_std"] - spread).abs() <= rounding).all(), name
        assert (both[f"{name}_std"] > 0).any()  # two seeds disagree somewhere

    printed = invoke("predict", "--model", str(trained), "--model", str(other),
                     "--cif", str(EXAMPLES / "JVASP-934_Nb.cif"))  # fmt: skip
    assert printed.exit_code == 0 and "±" in printed.output

    specialist = next((root / "formation_energy_smoke_cgcnn").glob("run_*"))
    result = invoke("predict", "--model", str(trained), "--model", str(specialist),
                    "--cif", str(EXAMPLES / "JVASP-934_Nb.cif"))  # fmt: skip
    assert result.exit_code != 0 and "same properties" in result.output
