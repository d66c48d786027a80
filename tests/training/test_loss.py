from __future__ import annotations

import numpy as np
import torch

from matbrain.models.normalizer import Normalizer
from matbrain.training.loss import masked_loss


def test_missing_labels_do_not_change_the_loss_or_gradient():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    target = torch.tensor([[1.5, float("nan")], [2.0, 1e6]])
    mask = torch.tensor([[True, False], [True, False]])
    loss = masked_loss(pred, target, mask, torch.ones(2), "mse")
    assert torch.isfinite(loss)
    assert torch.isclose(loss, torch.tensor((0.25 + 1.0) / 2))
    loss.backward()
    assert pred.grad[:, 1].abs().sum() == 0  # no gradient into masked outputs
    assert pred.grad[:, 0].abs().sum() > 0


def test_property_weights():
    pred = torch.zeros(1, 2)
    target = torch.tensor([[1.0, 2.0]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    assert torch.isclose(
        masked_loss(pred, target, mask, torch.tensor([1.0, 0.0]), "l1"), torch.tensor(1.0)
    )
    assert torch.isclose(
        masked_loss(pred, target, mask, torch.tensor([1.0, 3.0]), "l1"), torch.tensor(7.0 / 4.0)
    )


def test_empty_batch_gives_zero_loss():
    pred = torch.zeros(2, 1, requires_grad=True)
    loss = masked_loss(
        pred, torch.full((2, 1), float("nan")), torch.zeros(2, 1, dtype=torch.bool), torch.ones(1)
    )
    assert loss.item() == 0.0


def test_normalisation_round_trips_and_uses_only_masked_labels():
    rng = np.random.default_rng(0)
    y = rng.normal([3.0, -50.0], [0.1, 20.0], size=(50, 2))
    y[5, 1] = np.nan
    mask = ~np.isnan(y)
    mask[:10, 0] = False
    norm = Normalizer.fit(y, mask)
    assert np.isclose(norm.mean[0], y[10:, 0].mean())
    assert np.allclose(norm.denormalize(norm.normalize(y)), y, equal_nan=True)
    z = norm.normalize(y)
    assert abs(np.nanmean(z[10:, 0])) < 1e-9 and abs(np.nanstd(z[:, 1]) - 1) < 1e-6
    constant = Normalizer.fit(np.ones((4, 1)), np.ones((4, 1), dtype=bool))
    assert constant.std == [1.0]


def test_elemental_identities_fix_only_one_element_crystals():
    from matbrain.properties import apply_elemental_identities, resolve_properties

    props = resolve_properties(["formation_energy", "band_gap", "ehull"])
    values = np.array([[-0.2, 0.1, 5.2], [-0.5, 0.0, 1.3], [0.08, 0.0, 4.0]])
    numbers = [np.array([41, 41]), np.array([29, 8]), np.array([26])]
    out = apply_elemental_identities(values, props, numbers)
    assert out[0].tolist() == [0.0, 0.1, 0.0]  # element: E_f >= 0 and E_hull = E_f
    assert out[1].tolist() == values[1].tolist()  # a compound is left alone
    assert out[2].tolist() == [0.08, 0.0, 0.08]
