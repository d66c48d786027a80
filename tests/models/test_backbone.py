"""Universal potentials as property backbones: real pretrained weights, training, artifacts."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from ase.build import bulk

from matbrain.inference import Predictor
from matbrain.models.artifact import load_artifact
from matbrain.models.backbone import backbone_version, featurize
from matbrain.training.config import resolve_config
from matbrain.training.pipeline import run_training

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backbone", ["chgnet", "sevennet", "sevennet-l3i5"])
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


def test_sevennet_l3i5_is_its_own_model():
    atoms = bulk("NaCl", "rocksalt", a=5.5)
    atoms.rattle(0.05, seed=1)
    (small,), _ = featurize([atoms], "sevennet")
    (large,), _ = featurize([atoms], "sevennet-l3i5")
    assert small is not None and large is not None
    # another network (l_max 3, five layers): another energy and other features
    assert abs(small.energy_per_atom - large.energy_per_atom) > 1e-3
    assert not np.allclose(
        small.features[: len(large.features)], large.features[: len(small.features)]
    )
    assert "SevenNet-l3i5" in backbone_version("sevennet-l3i5")
    assert "SevenNet-0" in backbone_version("sevennet")


@pytest.mark.parametrize(
    "backbone, n_layers, width", [("chgnet", 4, 64), ("sevennet-l3i5", 5, 128)]
)
def test_every_layers_features_end_with_the_last_layers(backbone, n_layers, width):
    """``all`` puts each message-passing layer's invariant features side by side (the earlier
    layers first): the last block is exactly what ``last`` gives, the earlier ones add to it."""
    atoms = bulk("NaCl", "rocksalt", a=5.5)
    atoms.rattle(0.05, seed=3)
    (every,), _ = featurize([atoms], backbone, layers="all")
    (last,), _ = featurize([atoms], backbone, layers="last")
    assert every is not None and last is not None
    assert every.features.shape == (n_layers * width,)
    np.testing.assert_allclose(every.features[-len(last.features) :], last.features, atol=1e-5)
    earlier = every.features[: -len(last.features)].reshape(-1, width)
    assert len(earlier) == n_layers - len(last.features) // width
    assert all(not np.allclose(block, last.features[:width], atol=1e-3) for block in earlier)
    assert every.energy_per_atom == pytest.approx(last.energy_per_atom, abs=1e-6)
    with pytest.raises(ValueError, match="valid: all, last"):
        featurize([atoms], backbone, layers="first")


@pytest.mark.parametrize(
    "sevennet_model", [("sevennet", "SevenNet-0"), ("sevennet-l3i5", "SevenNet-l3i5")]
)
def test_both_universal_potentials_side_by_side(sevennet_model, tmp_path):
    name, label = sevennet_model
    atoms = bulk("NaCl", "rocksalt", a=5.5)
    atoms.rattle(0.05, seed=2)
    (both,), _ = featurize([atoms], f"chgnet+{name}")
    (chgnet,), _ = featurize([atoms], "chgnet")
    (sevennet,), _ = featurize([atoms], name)
    assert both is not None and chgnet is not None and sevennet is not None
    np.testing.assert_allclose(both.features, np.concatenate([chgnet.features, sevennet.features]),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    assert both.energy_per_atom == pytest.approx(
        (chgnet.energy_per_atom + sevennet.energy_per_atom) / 2, abs=1e-6
    )
    assert label in backbone_version(f"chgnet+{name}")
    if name != "sevennet":  # one training run is enough: the combined models share their code
        return
    overrides = {"properties": ["formation_energy"], "max_samples": 60, "epochs": 3,
                 "output_root": str(tmp_path)}  # fmt: skip
    result = run_training(resolve_config(f"chgnet+{name}", "smoke", overrides=overrides),
                          progress=False)  # fmt: skip
    predictor = Predictor.from_path(result.run_dir)
    hyper = predictor.loaded.metadata["hyperparameters"]
    assert hyper["backbone"] == f"chgnet+{name}" and label in hyper["backbone_version"]
    assert np.isfinite(predictor.predict_atoms([atoms])).all()


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


def test_the_hubbard_u_column_is_mp2020s_shift_for_oxides_and_fluorides_only():
    from matbrain.models.backbone import BackboneNet, hubbard_u_shift, with_hubbard_u

    fractions = torch.zeros(4, 119)
    fractions[0, 26], fractions[0, 8] = 0.4, 0.6  # Fe2O3: GGA+U in the Materials Project
    fractions[1, 26] = 1.0  # Fe metal: plain GGA
    fractions[2, 26], fractions[2, 16] = 0.5, 0.5  # FeS: no O or F, no U
    fractions[3, 28], fractions[3, 9] = 1 / 3, 2 / 3  # NiF2
    shift = hubbard_u_shift(fractions)[:, 0]
    assert shift.tolist() == pytest.approx([0.4 * -2.256, 0.0, 0.0, -2.541 / 3], rel=1e-5)
    linear = torch.cat([torch.full((4, 1), -5.0), fractions], dim=1)
    augmented = with_hubbard_u(linear)
    assert augmented.shape == (4, 121) and torch.equal(augmented[:, 1], shift)
    assert torch.equal(augmented[:, 2:], fractions) and torch.equal(augmented[:, 0], linear[:, 0])
    # a model saved before the column existed keeps its (energy, fractions) linear part
    old, new = BackboneNet(1, hubbard_u=False), BackboneNet(1, hubbard_u=True)
    assert old.heads.baseline[0].in_features == 120 and new.heads.baseline[0].in_features == 121


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


def test_chgnet_finetune_starts_at_the_frozen_model_and_trains_the_encoder(tmp_path):
    from matbrain.training.pipeline import build_model, prepare_data
    from matbrain.training.trainer import Trainer

    overrides = {
        "properties": ["formation_energy"],
        "max_samples": 60,
        "epochs": 1,
        "backbone_mode": "finetune",
        "encoder_lr_factor": 0.1,
    }
    cfg = resolve_config("chgnet", "smoke", overrides=overrides)
    data, _ = prepare_data(cfg, progress=False)
    model = build_model(cfg, data)
    for mlp in model.heads.mlp:  # a non-trivial head, so that the features matter
        torch.nn.init.normal_(mlp[-1].weight, std=0.5)
    # fine-tuned end to end, CHGNet's own forward pass gives the last layers' features
    frozen_cfg = cfg.model_copy(update={"backbone_mode": "frozen", "backbone_layers": "last"})
    frozen_data, _ = prepare_data(frozen_cfg, progress=False)
    frozen = build_model(frozen_cfg, frozen_data)
    frozen.load_state_dict(
        {k: v for k, v in model.state_dict().items() if not k.startswith("encoder.")}
    )
    model.eval()
    frozen.eval()
    with torch.no_grad():
        live = model(model.collate(data.graphs[:6]))
        cached = frozen(frozen.collate(frozen_data.graphs[:6]))
    assert torch.allclose(live, cached, atol=1e-4)

    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    trainer = Trainer(model, cfg, data, tmp_path, progress=False)
    assert [g["lr"] for g in trainer.optimizer.param_groups] == pytest.approx(
        [cfg.lr, 0.1 * cfg.lr]
    )
    trainer.fit()
    moved = [k for k, v in model.encoder.state_dict().items() if not torch.equal(v, before[k])]
    assert len(moved) > len(before) // 2
    with pytest.raises(ValueError, match="implemented for the chgnet backbone"):
        resolve_config("sevennet", "smoke", overrides=overrides) and build_model(
            resolve_config("sevennet", "smoke", overrides=overrides), frozen_data
        )


def test_features_are_cached_per_structure_across_datasets(
    tmp_path, monkeypatch, bundled_structures
):
    from matbrain.models import backbone

    monkeypatch.setenv("MATBRAIN_CACHE", str(tmp_path))
    first = bundled_structures.subset(range(0, 12))
    second = bundled_structures.subset(range(6, 20))  # 6 shared, 8 new
    seen = []
    real = backbone.featurize

    def counting(structures, *args, **kwargs):
        seen.append(len(structures))
        return real(structures, *args, **kwargs)

    monkeypatch.setattr(backbone, "featurize", counting)
    a = backbone.dataset_features(first, "chgnet", progress=False)
    b = backbone.dataset_features(second, "chgnet", progress=False)
    c = backbone.dataset_features(second, "chgnet", progress=False)
    assert seen == [12, 8]  # the shared structures are not featurized again, the third call none
    assert set(c.graphs) == set(second.ids) and c.key == b.key != a.key
    for sid in set(first.ids) & set(second.ids):
        assert np.array_equal(a.graphs[sid].features, b.graphs[sid].features)


def test_mace_backbone_takes_a_local_model(trained_run, trained_calc):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=2)
    inputs, reasons = featurize(
        [atoms, atoms.repeat((2, 1, 1))], "mace", str(trained_run.model_path)
    )
    assert inputs[0] is not None, reasons
    reference = atoms.copy()
    reference.calc = trained_calc
    own = reference.get_potential_energy() / len(reference)
    assert inputs[0].energy_per_atom == pytest.approx(own, abs=1e-5)
    # averaged invariant descriptors: a supercell gives the same features
    assert np.allclose(inputs[0].features, inputs[1].features, atol=1e-5)
    with pytest.raises(ValueError, match="--base-model"):
        featurize([atoms], "mace")


def test_each_head_on_a_frozen_backbone_keeps_its_own_best_epoch(tmp_path):
    """Heads on a frozen backbone share no weights: best.pt holds each at its own best
    validation epoch, so every property's validation MAE is its minimum over the epochs."""
    import pandas as pd

    props = ["formation_energy", "band_gap", "bulk_modulus", "shear_modulus", "ehull"]
    overrides = {"properties": props, "max_samples": 300, "epochs": 12,
                 "split": "leaderboard-overlap", "output_root": str(tmp_path)}  # fmt: skip
    result = run_training(resolve_config("chgnet", "smoke", overrides=overrides), progress=False)
    history = json.loads((result.run_dir / "history.json").read_text())
    summary = json.loads((result.run_dir / "summary.json").read_text())
    std = load_artifact(result.run_dir).normalizer.std
    metrics = pd.read_csv(result.run_dir / "metrics.csv").set_index("property")
    for j, name in enumerate(props):
        curve = [h["val_mae_over_std"][name] for h in history]
        best = int(np.argmin(curve))
        assert summary["best_epoch_per_property"][name] == best + 1
        lowest = curve[best] * std[j]
        if name == "formation_energy":  # not clipped: the saved head scores exactly its best
            assert metrics.loc[name, "val_mae"] == pytest.approx(lowest, rel=1e-4)
        else:  # clipping at zero (moduli, hull energies) can only lower the error
            assert metrics.loc[name, "val_mae"] <= lowest * (1 + 1e-4)
    assert len(set(summary["best_epoch_per_property"].values())) > 1  # a joint epoch would not do


def test_a_backbones_kernel_part_compares_structures_when_it_is_on():
    """``on``: the part compares the composition and the crystal graph's bond and cell
    statistics; ``auto`` (whose stand-in check misjudges such a part) and ``off``: the
    composition only, as models saved before it."""
    from matbrain.models.backbone import kernel_descriptors

    def kind(mode: str) -> str:
        return kernel_descriptors(
            resolve_config("chgnet", "smoke", overrides={"composition_kernel": mode})
        )

    assert kind("on") == "composition+structure"
    assert kind("auto") == kind("off") == "composition"
