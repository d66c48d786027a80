"""Specialist training features, each tested so that it fails if the feature were a no-op."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from matbrain.data.splits import TRAIN, UNUSED, Split, drop_outliers, robust_outliers
from matbrain.models.artifact import load_artifact
from matbrain.training.config import resolve_config
from matbrain.training.pipeline import build_model, prepare_data, run_training
from matbrain.training.trainer import Trainer

TINY = {"max_samples": 60, "batch_size": 8, "properties": ["formation_energy"]}


def _trainer(tmp_path, **overrides):
    cfg = resolve_config(
        "e3nn", "smoke", overrides={**TINY, "output_root": str(tmp_path), **overrides}
    )
    data, _ = prepare_data(cfg, progress=False)
    torch.manual_seed(0)
    return Trainer(build_model(cfg, data), cfg, data, tmp_path, progress=False)


def _params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_accumulated_gradient_equals_one_big_batch(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.model.train()
    idx = trainer.train_idx[:12]

    def gradient(groups):
        trainer.model.zero_grad(set_to_none=True)
        loss, _ = trainer.accumulate_gradient(groups)
        return loss, torch.cat([p.grad.flatten() for p in trainer.model.parameters()])

    loss_big, g_big = gradient([idx])
    loss_acc, g_acc = gradient([idx[:4], idx[4:7], idx[7:]])  # unequal micro-batches
    loss_last, g_last = gradient([idx[7:]])
    assert loss_acc == pytest.approx(loss_big, rel=1e-5)
    assert torch.allclose(g_acc, g_big, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(g_last, g_big, rtol=1e-2)  # the comparison can tell them apart


def test_outlier_filter_drops_exactly_the_injected_outliers():
    rng = np.random.default_rng(0)
    y = rng.normal(1.0, 0.3, size=(400, 2))
    y[[5, 77, 301], 0] = [40.0, -35.0, 12.0]
    y[123, 1] = 90.0
    y[7, 1] = np.nan
    roles = np.full(y.shape, TRAIN, dtype=np.int8)
    roles[301, 0] = 2  # a test label is never dropped, however far out
    split = Split(roles=roles, kind="random", seed=0)
    ids = [f"m{i}" for i in range(len(y))]
    new, dropped = drop_outliers(split, y, ids, ["a", "b"], sigma=7.5)
    assert dropped == {"a": ["m5", "m77"], "b": ["m123"]}
    assert (new.roles != roles).sum() == 3 and new.roles[5, 0] == UNUSED
    assert not robust_outliers(rng.normal(size=10_000), 7.5).any()


def test_ema_weights_follow_the_recursion_and_are_what_is_saved(tmp_path):
    decay = 0.8
    trainer = _trainer(tmp_path, epochs=1, ema_decay=decay)
    raw_after_steps = []
    step = trainer.optimizer.step

    def recording_step(*args, **kwargs):
        out = step(*args, **kwargs)
        raw_after_steps.append(_params(trainer.model))
        return out

    trainer.optimizer.step = recording_step
    trainer.fit()
    assert len(raw_after_steps) >= 3
    expected = raw_after_steps[0]
    for raw in raw_after_steps[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * raw[k] for k in expected}
    ema = _params(trainer.ema.module)
    final = raw_after_steps[-1]
    assert all(torch.allclose(ema[k], expected[k], atol=1e-6) for k in ema)
    assert any(not torch.allclose(ema[k], final[k], atol=1e-4) for k in ema)
    assert trainer.eval_model() is trainer.ema.module


def test_swa_averages_the_weights_of_its_epochs(tmp_path):
    trainer = _trainer(tmp_path, epochs=4, swa=True, swa_start=0.5, scheduler="onecycle")
    per_epoch = []
    trainer.callbacks.append(lambda t, record: per_epoch.append(_params(t.model)))
    history = trainer.fit()
    assert [h["phase"] for h in history] == ["train", "train", "swa", "swa"]
    swa = _params(trainer.swa_model.module)
    mean = {k: (per_epoch[2][k] + per_epoch[3][k]) / 2 for k in swa}
    assert all(torch.allclose(swa[k], mean[k], atol=1e-6) for k in swa)
    assert any(not torch.allclose(swa[k], per_epoch[3][k], atol=1e-5) for k in swa)


def test_early_stopping_ends_a_run_that_does_not_improve(tmp_path):
    # a learning rate below float32 resolution: the weights, hence the validation score, stay put
    trainer = _trainer(tmp_path, epochs=40, lr=1e-14, patience=3, scheduler="plateau")
    history = trainer.fit()
    assert len(history) == 4 and trainer.stop_reason.startswith("early stop")


def test_specialist_levels_layer_like_the_multitask_ones(tmp_path):
    cfg = resolve_config("e3nn", "max", overrides={"properties": ["band_gap"]})
    assert (cfg.epochs, cfg.acc_steps, cfg.lr, cfg.swa, cfg.batch_size) == (
        2200,
        6,
        1.5e-4,
        True,
        16,
    )
    comp = resolve_config("cgcnn", "competition", overrides={"properties": ["ehull"]})
    assert (comp.epochs, comp.ema_decay, comp.outlier_sigma, comp.acc_steps) == (900, 0.999, 7.5, 3)
    multi = resolve_config("e3nn", "std")
    assert (multi.epochs, multi.acc_steps) == (100, 1)  # several properties: multi-task table
    flagged = resolve_config("e3nn", "std", overrides={"properties": ["band_gap"], "lr": 1e-3})
    assert flagged.lr == 1e-3 and flagged.epochs == 800


def test_finetuned_specialist_starts_at_the_multitask_prediction(tmp_path):
    torch.manual_seed(0)
    base = resolve_config(
        "e3nn",
        "smoke",
        overrides={
            "properties": ["formation_energy", "band_gap", "bulk_modulus"],
            "epochs": 1,
            "max_samples": 60,
            "composition_baseline": True,  # its per-property layers follow the chosen head
            "composition_kernel": "on",  # and so do the kernel part's per-property buffers
            "output_root": str(tmp_path),
        },
    )
    source = run_training(base, progress=False).run_dir
    cfg = resolve_config(
        "e3nn",
        "smoke",
        overrides={
            "properties": ["band_gap"],
            "finetune_from": str(source),
            "max_samples": 60,
            "epochs": 1,
            "freeze_encoder_epochs": 1,
            "output_root": str(tmp_path),
        },
    )
    data, info = prepare_data(cfg, progress=False)
    model = build_model(cfg, data).eval()
    multi = load_artifact(source)
    batch = model.collate([data.graphs[i] for i in range(8)])
    with torch.no_grad():
        assert torch.allclose(model(batch)[:, 0], multi.model(batch)[:, 1], atol=1e-6)
    assert data.normalizer.mean == [multi.normalizer.mean[1]]
    assert torch.equal(model.composition[0].weight, multi.model.composition[1].weight)
    for name in ("coef", "gamma", "bond_weight"):
        assert torch.equal(getattr(model.kernel, name)[0], getattr(multi.model.kernel, name)[1])
    assert multi.model.kernel.coef[1].any()
    assert info["finetuned_from"]["property_index"] == 1
    before = _params(model)
    trainer = Trainer(model, cfg, data, tmp_path / "ft", progress=False)
    (tmp_path / "ft").mkdir()
    trainer.fit()  # one epoch with the encoder frozen: only the head moves
    after = _params(trainer.model)
    moved = {k for k in before if not torch.allclose(before[k], after[k])}
    assert moved and all(k.startswith(("heads.", "composition.")) for k in moved)
    assert any(k.startswith("composition.") for k in moved)

    with pytest.raises(ValueError, match="not trained on 'spillage'"):
        prepare_data(cfg.model_copy(update={"properties": ["spillage"]}), progress=False)
    with pytest.raises(ValueError, match="is a e3nn model"):
        build_model(cfg.model_copy(update={"algorithm": "cgcnn"}))


def test_run_records_the_outliers_it_dropped(tmp_path):
    cfg = resolve_config(
        "cgcnn",
        "smoke",
        overrides={
            "properties": ["bulk_modulus"],
            "epochs": 1,
            "max_samples": 300,
            "outlier_sigma": 2.0,
            "output_root": str(tmp_path),
        },
    )
    run = run_training(cfg, progress=False).run_dir
    data = json.loads((run / "data.json").read_text())
    dropped = data["outliers_dropped"]
    assert dropped["sigma"] == 2.0 and dropped["count"]["bulk_modulus"] > 0
    assert len(dropped["ids"]["bulk_modulus"]) == dropped["count"]["bulk_modulus"]
    assert data["split"]["labels"]["bulk_modulus"]["train"] > 0


def test_smoke_matrix_completes_and_a_second_call_skips_finished_cells(tmp_path):
    from typer.testing import CliRunner

    from matbrain.cli.main import app

    args = [
        "matrix",
        "--tiers",
        "smoke",
        "--algorithm",
        "cgcnn",
        "--properties",
        "formation_energy,bulk_modulus",
        "--epochs",
        "1",
        "--max-samples",
        "80",
        "--folder",
        str(tmp_path / "m"),
        "--quiet",
    ]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "3 cells trained, 0 already done" in first.output
    for name in ("summary.csv", "summary.md", "heatmap.png", "matrix.json"):
        assert (tmp_path / "m" / name).exists(), name
    table = (tmp_path / "m" / "summary.md").read_text()
    assert "smoke cgcnn multitask" in table and "smoke cgcnn specialist" in table
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0 and "0 cells trained, 3 already done" in second.output
    runs = list((tmp_path / "m" / "runs").glob("*/run_*"))
    assert len(runs) == 3
