"""Physics every property model must obey: invariance to rotation, translation, permutation, supercell."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from scipy.spatial.transform import Rotation

from matbrain.data.graphs import GraphConfig
from matbrain.models import get_model_class
from matbrain.models.backbone import BackboneNet

CONFIG = GraphConfig(cutoff_A=5.0, max_neighbors=12)
# every model that needs no file beside it (mace as a backbone needs a local .model)
MODELS = ("cgcnn", "e3nn", "e3nn-cgcnn-atoms", "chgnet", "sevennet", "chgnet-all", "sevennet-all")
BACKBONES = {  # name: (backbone, feature layers, feature dimension)
    "chgnet": ("chgnet", "last", 128),
    "sevennet": ("sevennet", "last", 128),
    "chgnet-all": ("chgnet", "all", 256),
    "sevennet-all": ("sevennet", "all", 640),
}


def predict(model, structures: list[Atoms]) -> np.ndarray:
    """Through the model's own inputs (graphs, or a backbone's features) and collate."""
    with torch.no_grad():
        inputs = model.make_inputs(structures, CONFIG, model.hyperparameters)
        return model(model.collate(inputs)).numpy()


@pytest.fixture(params=MODELS)
def model(request):
    torch.manual_seed(0)
    if request.param in BACKBONES:
        backbone, layers, dim = BACKBONES[request.param]
        m = BackboneNet(3, backbone, feature_dim=dim, hubbard_u=True, feature_layers=layers)
        for mlp in m.heads.mlp:  # a trained-looking head: not the zero start
            torch.nn.init.normal_(mlp[-1].weight, std=0.3)
        for lin in m.heads.baseline:
            torch.nn.init.normal_(lin.weight, std=0.3)
    else:
        algorithm, _, atoms = request.param.partition("-")
        m = get_model_class(algorithm).from_preset(
            "small",
            n_properties=3,
            cutoff=CONFIG.cutoff_A,
            atom_features="cgcnn" if atoms else "learned",
        )
    m.eval()
    # a trained-looking batch-norm state, so that eval mode is not the identity
    for module in m.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.normal_(0, 0.3)
            module.running_var.uniform_(0.5, 2.0)
    return m


def test_rotation_and_translation(model, triclinic):
    moved = triclinic.copy()
    R = Rotation.random(random_state=7).as_matrix()
    moved.set_cell(triclinic.cell.array @ R.T, scale_atoms=False)
    moved.positions = triclinic.positions @ R.T + np.array([0.7, -1.3, 2.1])
    a, b = predict(model, [triclinic, moved])
    assert np.allclose(a, b, atol=1e-4), (a, b)


def test_permutation_of_atoms(model, triclinic):
    order = np.random.default_rng(0).permutation(len(triclinic))
    a, b = predict(model, [triclinic, triclinic[order]])
    assert np.allclose(a, b, atol=1e-5)


def test_supercell_gives_the_same_prediction(model, triclinic):
    a, b = predict(model, [triclinic, triclinic.repeat((2, 2, 1))])
    assert np.allclose(a, b, atol=1e-4)


def test_prediction_changes_when_the_structure_does(model, triclinic):
    strained = triclinic.copy()
    strained.set_cell(triclinic.cell.array * 1.08, scale_atoms=True)
    a, b = predict(model, [triclinic, strained])
    assert not np.allclose(a, b, atol=1e-4)


def test_batched_equals_one_by_one(model, bundled_structures):
    structures = bundled_structures.structures[:5]
    together = predict(model, structures)
    alone = np.concatenate([predict(model, [s]) for s in structures])
    assert np.allclose(together, alone, atol=1e-5)
