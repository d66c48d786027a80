"""Atoms that start from CGCNN's element descriptors: the table, the embedding, the artifact."""

from __future__ import annotations

import pytest
import torch

from matbrain.data.batching import collate
from matbrain.data.graphs import GraphConfig, build_graph
from matbrain.models import get_model_class
from matbrain.models.artifact import load_artifact, save_artifact
from matbrain.models.element_features import cgcnn_table, element_embedding
from matbrain.models.normalizer import Normalizer
from matbrain.properties import resolve_properties


def test_table_covers_hydrogen_to_fermium_and_relates_similar_elements():
    table = cgcnn_table()
    assert table.shape == (119, 92)
    assert (table[1:101].sum(dim=1) > 0).all()  # every element CGCNN covers has descriptors
    assert (table[0] == 0).all() and (table[101:] == 0).all()
    distance = lambda a, b: (table[a] - table[b]).abs().sum()  # noqa: E731
    na, k, cl, rb = 11, 19, 17, 37
    assert distance(na, k) < distance(na, cl)  # alkali metals are neighbours, not Na and Cl
    assert distance(k, rb) < distance(k, cl)


def test_unknown_atom_features_are_a_clear_error():
    with pytest.raises(ValueError, match="unknown atom features 'magpie'.*learned, cgcnn"):
        element_embedding(8, "magpie")


@pytest.mark.parametrize("algorithm", ["cgcnn", "e3nn"])
def test_descriptor_model_saves_and_loads_with_the_same_predictions(
    algorithm, tmp_path, bundled_structures
):
    torch.manual_seed(0)
    graph = GraphConfig(cutoff_A=5.0, max_neighbors=12)
    model = get_model_class(algorithm).from_preset(
        "small", n_properties=1, cutoff=graph.cutoff_A, atom_features="cgcnn"
    )
    model.eval()
    batch = collate([build_graph(a, graph) for a in bundled_structures.structures[:4]])
    with torch.no_grad():
        before = model(batch)
    assert model.embedding.table.shape == (119, 92)
    save_artifact(tmp_path / "best.pt", model, resolve_properties(["formation_energy"]),
                  Normalizer([0.0], [1.0]), graph)  # fmt: skip
    loaded = load_artifact(tmp_path)
    assert loaded.model.hyperparameters["atom_features"] == "cgcnn"
    with torch.no_grad():
        assert torch.allclose(loaded.model(batch), before, atol=1e-6)
