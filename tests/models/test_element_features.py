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


def test_element_property_statistics_of_a_binary_oxide():
    from matbrain.models.element_features import element_property_statistics, element_property_table

    table = element_property_table()
    assert not torch.isnan(table).any() and (table[0] == 0).all()
    fractions = torch.zeros(2, 119, dtype=torch.float64)
    fractions[0, 26], fractions[0, 8] = 0.4, 0.6  # Fe2O3
    fractions[1, 26] = 1.0  # Fe
    stats = element_property_statistics(fractions).reshape(2, 5, -1)  # mean, dev, max, min, range
    x_fe, x_o = 1.83, 3.44  # Pauling electronegativities, column 1
    mean = 0.4 * x_fe + 0.6 * x_o
    assert stats[0, 0, 1].item() == pytest.approx(mean, abs=1e-6)
    assert stats[0, 1, 1].item() == pytest.approx(0.4 * (mean - x_fe) + 0.6 * (x_o - mean))
    assert stats[0, 2, 1].item() == pytest.approx(x_o) and stats[0, 3, 1].item() == pytest.approx(
        x_fe
    )
    assert stats[0, 4, 1].item() == pytest.approx(x_o - x_fe)
    # an element alone: its own properties, no spread
    assert stats[1, 0].tolist() == pytest.approx(table[26].tolist(), rel=1e-6)
    assert (stats[1, 1] == 0).all() and (stats[1, 4] == 0).all()
