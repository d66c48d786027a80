"""The kernel part of every model: kernel ridge on the composition (and bonds), closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matbrain.models.composition_kernel import RIDGES, fit_composition_kernel, kernel_points
from matbrain.models.element_features import composition_descriptors
from matbrain.models.linear_baseline import N_ELEMENTS

ELEMENTS = [3, 8, 11, 13, 14, 22, 26, 29, 31, 47]


def _polymorph_set(seed: int, n_formulas: int = 60, polymorphs: int = 4):
    """Structures in groups sharing a composition; a random structure feature for each."""
    rng = np.random.default_rng(seed)
    fractions = np.zeros((n_formulas, N_ELEMENTS))
    for f in range(n_formulas):
        chosen = rng.choice(ELEMENTS, size=rng.integers(1, 4), replace=False)
        fractions[f, chosen] = rng.dirichlet(np.ones(len(chosen)))
    formula = np.repeat(np.arange(n_formulas), polymorphs)
    raw = composition_descriptors(torch.from_numpy(fractions[formula]).float()).double().numpy()
    descriptors = (raw - raw.mean(0)) / (raw.std(0) + 1e-3)
    features = rng.normal(size=(len(formula), 8))
    role = rng.permutation(len(formula)) % 10  # 0-6 train, 7 val, 8-9 test
    return rng, formula, descriptors, features, role < 7, role == 7, role >= 8


def _fractions(seed: int, n_formulas: int = 60, polymorphs: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)  # the same draws as _polymorph_set
    fractions = np.zeros((n_formulas, N_ELEMENTS))
    for f in range(n_formulas):
        chosen = rng.choice(ELEMENTS, size=rng.integers(1, 4), replace=False)
        fractions[f, chosen] = rng.dirichlet(np.ones(len(chosen)))
    return np.repeat(fractions, polymorphs, axis=0)


def test_a_label_that_is_a_function_of_composition_is_learnt_and_kept():
    rng, formula, descriptors, features, train, val, test = _polymorph_set(0)
    per_formula = rng.normal(size=formula.max() + 1)
    y = per_formula[formula] + 0.01 * rng.normal(size=len(formula))
    fit = fit_composition_kernel(
        descriptors, features, y, kernel_points(train), train, val, mode="auto"
    )
    assert fit.kept and fit.validation["with"] < 0.5 * fit.validation["without"]
    seen = test & np.isin(formula, formula[train])  # a polymorph of it trains
    assert np.abs(fit.values[seen] - y[seen]).mean() < 0.35 * np.abs(y[seen]).mean()
    # training and validation structures carry leave-one-out values: not memorised
    points = kernel_points(train | val)
    full = fit_composition_kernel(descriptors, features, y, points, train, val, "on")
    assert np.abs(full.values[train] - y[train]).mean() > 1e-3
    assert np.abs(full.values[val] - y[val]).mean() > 1e-3


def test_fitted_structures_carry_their_exact_leave_one_out_values():
    """What the network trains and validates against, for a structure the part was fitted to,
    is the prediction of the same fit without that structure's label."""
    rng, formula, descriptors, features, train, val, _ = _polymorph_set(3)
    y = rng.normal(size=formula.max() + 1)[formula] + 0.1 * rng.normal(size=len(formula))
    points = kernel_points(train | val)
    fit = fit_composition_kernel(descriptors, features, y, points, train, val, "on")
    ridge = next(r for r in RIDGES if np.allclose(_kernel_fit(descriptors, fit.gamma, points,
                                                              y, r), fit.coef))  # fmt: skip
    for i in (points[0], points[len(points) // 2], np.flatnonzero(val)[0]):
        others = points[points != i]
        coef = _kernel_fit(descriptors, fit.gamma, others, y, ridge)
        kernel = np.exp(-fit.gamma * np.abs(descriptors[i] - descriptors[others]).sum(1))
        assert fit.values[i] == pytest.approx(kernel @ coef, abs=1e-8)
        assert abs(fit.values[i] - y[i]) > 1e-3  # not its own label


def _kernel_fit(descriptors, gamma, rows, y, ridge):
    distance = np.abs(descriptors[rows, None] - descriptors[None, rows]).sum(-1)
    kernel = np.exp(-gamma * distance) + ridge * np.eye(len(rows))
    return np.linalg.solve(kernel, y[rows])


def test_the_final_fit_uses_the_validation_labels_too():
    """Hyperparameters are chosen on validation; the part kept is then refitted on training and
    validation labels: a formula that only validation has is known for its test polymorphs."""
    rng, formula, descriptors, features, train, val, test = _polymorph_set(2)
    per_formula = rng.normal(size=formula.max() + 1)
    only_val = test & ~np.isin(formula, formula[train]) & np.isin(formula, formula[val])
    assert only_val.any()
    per_formula[formula[only_val]] = 4.0  # far from every formula that trains
    y = per_formula[formula] + 0.01 * rng.normal(size=len(formula))
    with_val = fit_composition_kernel(descriptors, features, y, kernel_points(train | val),
                                      train, val, "on")  # fmt: skip
    train_only = fit_composition_kernel(descriptors, features, y, kernel_points(train),
                                        train, val, "on")  # fmt: skip
    assert np.abs(with_val.values[only_val] - 4.0).max() < 1.0
    assert np.abs(train_only.values[only_val] - 4.0).min() > 2.0


def test_a_label_of_the_structure_alone_leaves_the_part_off():
    rng, formula, descriptors, features, train, val, _ = _polymorph_set(1)
    y = features @ rng.normal(size=features.shape[1])  # no composition dependence at all
    fit = fit_composition_kernel(descriptors, features, y, kernel_points(train), train, val)
    assert not fit.kept and np.all(fit.values == 0) and np.all(fit.coef == 0)
    off = fit_composition_kernel(descriptors, features, y, kernel_points(train), train, val, "off")
    assert not off.kept


def test_a_graph_networks_auto_check_compares_with_a_linear_fit_on_the_composition():
    """Without features (a graph network before training) the part is kept where it is far
    better than a linear fit on the atom fractions: a label of the structure alone leaves it off,
    and the module then adds nothing for new structures; a nonlinear function of the
    composition keeps it; forced on, the part is fitted and used."""
    from matbrain.models.composition_kernel import CompositionKernel

    rng, formula, _, features, train, val, _ = _polymorph_set(4)
    fractions = _fractions(4)
    per_formula = rng.normal(size=formula.max() + 1)
    labels = np.stack([features @ rng.normal(size=features.shape[1]),  # structure alone
                       per_formula[formula]], axis=1)  # fmt: skip
    mask = np.stack([train, train], axis=1), np.stack([val, val], axis=1)
    auto = CompositionKernel(2, len(kernel_points(train | val)), "auto", "composition")
    assert not auto.fit(fractions, labels[:, :1], mask[0][:, :1], mask[1][:, :1]).any()
    assert not auto.coef[0].any()
    assert (auto(torch.from_numpy(fractions[val]))[:, 0] == 0).all()
    nonlinear = CompositionKernel(1, len(kernel_points(train | val)), "auto", "composition")
    nonlinear.fit(fractions, labels[:, 1:], mask[0][:, 1:], mask[1][:, 1:])
    assert nonlinear.coef[0].any()
    linear = CompositionKernel(1, len(kernel_points(train | val)), "auto", "composition")
    in_fractions = fractions @ rng.normal(size=fractions.shape[1])[:, None]
    linear.fit(fractions, in_fractions, mask[0][:, :1], mask[1][:, :1])
    assert not linear.coef[0].any()  # a linear fit does as well: the network can take it
    forced = CompositionKernel(2, len(kernel_points(train | val)), "on", "composition")
    forced.fit(fractions, labels, *mask)
    new = forced(torch.from_numpy(fractions[val]))[:, 1].numpy()
    assert np.abs(new - labels[val, 1]).mean() < 0.6 * np.abs(labels[val, 1]).mean()


def test_the_bond_blocks_weight_is_chosen_on_validation():
    """Graph networks' descriptors end with bond statistics; per property the kernel weighs
    them 0, 0.5 or 1 in its distance, whichever validates best."""
    rng, formula, descriptors, features, train, val, _ = _polymorph_set(5)
    both = np.concatenate([descriptors, features], axis=1)  # features stand for the bond block
    per_formula = rng.normal(size=formula.max() + 1)
    points = kernel_points(train)
    composition_only = per_formula[formula]
    fit = fit_composition_kernel(both, None, composition_only, points, train, val, "on",
                                 n_bond_columns=features.shape[1])  # fmt: skip
    assert fit.bond_weight == 0.0
    with_structure = per_formula[formula] + np.tanh(features[:, 0])
    fit = fit_composition_kernel(both, None, with_structure, points, train, val, "on",
                                 n_bond_columns=features.shape[1])  # fmt: skip
    assert fit.bond_weight > 0.0


def test_unknown_mode_is_a_clear_error():
    _, _, descriptors, features, train, val, _ = _polymorph_set(2, n_formulas=5)
    with pytest.raises(ValueError, match="unknown composition kernel 'sometimes'"):
        fit_composition_kernel(descriptors, features, np.zeros(len(features)),
                               kernel_points(train), train, val, "sometimes")  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("algorithm", "prop"), [("cgcnn", "bulk_modulus"), ("chgnet", "bulk_modulus")]
)
def test_a_saved_model_predicts_new_structures_as_it_scored_its_test_set(tmp_path, algorithm, prop):
    """Training uses precomputed kernel values; a saved model recomputes the part for a new
    structure from its stored points and the bond and cell statistics of the structure's graph
    (a backbone model builds that graph beside its potential's features): both must give the
    same test predictions."""
    import pandas as pd

    from matbrain.data.jarvis import load_jarvis_records
    from matbrain.data.structures import jarvis_atoms_to_ase
    from matbrain.inference import Predictor
    from matbrain.training.config import resolve_config
    from matbrain.training.pipeline import run_training

    overrides = {"properties": [prop], "max_samples": 300, "epochs": 2,
                 "composition_kernel": "on", "output_root": str(tmp_path)}  # fmt: skip
    result = run_training(resolve_config(algorithm, "smoke", overrides=overrides), progress=False)
    frame = pd.read_csv(result.run_dir / "predictions" / "predictions.csv")
    test = frame[frame[f"{prop}_split"] == "test"]
    assert len(test) >= 5
    records = {r["jid"]: r for r in load_jarvis_records()}
    structures = [jarvis_atoms_to_ase(records[i]["atoms"]) for i in test["id"]]
    predicted = Predictor.from_path(result.run_dir).predict_atoms(structures)[:, 0]
    np.testing.assert_allclose(predicted, test[f"{prop}_pred"].to_numpy(), rtol=1e-4, atol=1e-4)
    state = torch.load(result.run_dir / "best.pt", weights_only=True)["state_dict"]
    assert state["kernel.coef"].abs().sum() > 0  # the part is there, and it is used
    assert float(state["kernel.bond_weight"][0]) > 0  # and it compares the structure
    without = resolve_config(
        algorithm, "smoke", overrides={**overrides, "composition_kernel": "off"}
    )
    plain = run_training(without, progress=False)
    plain_state = torch.load(plain.run_dir / "best.pt", weights_only=True)["state_dict"]
    assert not any(k.startswith("kernel.") for k in plain_state)


@pytest.mark.parametrize("kind", ["composition+structure", "composition+structure+chemistry"])
def test_the_structure_block_sees_the_cell_and_new_structures_get_the_fitted_values(
    bundled_structures, kind
):
    """Graph networks' descriptors end with bond and cell statistics. A label that depends on
    how densely a structure fills space is learnt through them, and a new structure's value,
    recomputed from its graph, is the one the fit gave it."""
    from matbrain.data.batching import collate
    from matbrain.data.graphs import build_graph
    from matbrain.models.bond_descriptors import batch_bond_descriptors, graph_bond_descriptors
    from matbrain.models.composition_kernel import CompositionKernel
    from matbrain.models.linear_baseline import composition_matrix

    structures = bundled_structures.structures[:240]
    graphs = [build_graph(a) for a in structures]
    fractions = composition_matrix([g.numbers for g in graphs])
    label = np.log([a.get_volume() / len(a) for a in structures])[:, None]
    role = np.arange(len(graphs)) % 10
    train, val, test = (role < 7)[:, None], (role == 7)[:, None], role >= 8
    chemistry = kind.endswith("chemistry")
    structure = graph_bond_descriptors(graphs, cell=True, chemistry=chemistry)
    kernel = CompositionKernel(1, len(kernel_points(train[:, 0] | val[:, 0])), "on", kind)
    values = kernel.fit(fractions, label - label[train].mean(), train, val, bonds=structure)
    assert float(kernel.bond_weight[0]) > 0
    error = np.abs(values[test, 0] + label[train].mean() - label[test, 0]).mean()
    # composition alone: 0.36 of the MAD; with the bond statistics 0.32; with the cell 0.18
    assert error < 0.25 * np.abs(label[test, 0] - label[test, 0].mean()).mean()
    batch = collate([graphs[i] for i in np.flatnonzero(test)])
    again = kernel(
        torch.from_numpy(fractions[test]),
        batch_bond_descriptors(batch, cell=True, chemistry=chemistry),
    )
    np.testing.assert_allclose(again[:, 0].numpy(), values[test, 0], rtol=1e-5, atol=1e-5)
