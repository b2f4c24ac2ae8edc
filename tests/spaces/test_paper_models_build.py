"""Building the paper spaces at 224x224: cost == counted MAdds (slow: ~1 s a model)."""
from __future__ import annotations

import random

import pytest

from keras_layernas.profiling import count_madds
from keras_layernas.spaces import PAPER_SPACES, paper_space
from tests.spaces._reference import SPACE_OF, arch_of, paper_model

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", PAPER_SPACES)
@pytest.mark.parametrize("which", ["base", "random"])
def test_cost_equals_madds_counted_on_the_materialized_model(name, which):
    space = paper_space(name)
    rng = random.Random(f"{name}-{which}")
    arch = space.base_arch if which == "base" else tuple(
        rng.choice(layer.options) for layer in space.layers)
    model = space.materialize(arch)
    assert model.input_shape == (None, 224, 224, 3)
    assert model.output_shape == (None, 1001)
    members = {member for layer in space.layers for member in layer.members}
    assert members <= {layer.name for layer in model.layers}
    assert space.cost(arch) == count_madds(model)


@pytest.mark.parametrize("target", ["60M", "300M", "600M"])
def test_discovered_models_build_with_their_table_layers(shared_dir, target):
    space = paper_space(SPACE_OF[target])
    paper = paper_model(shared_dir, target)
    arch = arch_of(paper)
    model = space.materialize(arch)
    layers = {layer.name: layer for layer in model.layers}
    bnecks = [name[: -len("_project")] for name in layers if name.endswith("_project")]
    rows = [row for row in paper["layers"] if row["operator"] == "bneck"]
    assert len(bnecks) == len(rows)
    for bneck, row in zip(bnecks, rows):
        assert layers[f"{bneck}_project"].filters == row["output_filters"], bneck
        assert layers[f"{bneck}_depthwise"].kernel_size == (row["kernel"],) * 2, bneck
        assert layers[f"{bneck}_depthwise"].strides == (row["stride"],) * 2, bneck
        if row["expanded_filters"] is not None:
            assert layers[f"{bneck}_expand"].filters == row["expanded_filters"], bneck
    assert count_madds(model) == space.cost(arch)
