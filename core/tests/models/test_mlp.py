"""The `mlp` model and its time embedding."""

from __future__ import annotations

import pytest
import torch

from flowforge import registry
from flowforge.errors import InvalidArgumentError, SpecError
from flowforge.models import MLP, SinusoidalTimeEmbedding


def test_registered_mlp_maps_states_to_states_of_the_same_shape():
    model = registry.get("model", "mlp").build({"width": 16, "depth": 2}, data_shape=(2,))
    assert isinstance(model, MLP)
    out = model(torch.randn(5, 2), torch.rand(5))
    assert out.shape == (5, 2)


def test_mlp_flattens_structured_data_shapes():
    model = registry.get("model", "mlp").build({"width": 8}, data_shape=(3, 2))
    assert model(torch.randn(4, 3, 2), torch.rand(4)).shape == (4, 3, 2)


def test_mlp_starts_at_zero_and_depends_on_time_after_training_steps():
    model = MLP(2, 16, 2, 8)
    x, t = torch.randn(6, 2), torch.rand(6)
    assert torch.equal(model(x, t), torch.zeros(6, 2))
    torch.nn.init.normal_(model.head.weight)
    assert not torch.allclose(model(x, torch.zeros(6)), model(x, torch.ones(6)))


@pytest.mark.parametrize(
    "params", [{"width": 0}, {"activation": "swish"}, {"time_embed_dim": 7}, {"hidden": 3}]
)
def test_invalid_mlp_params_are_spec_errors(params):
    with pytest.raises(SpecError):
        registry.get("model", "mlp").build(params, data_shape=(2,))


def test_time_embedding_is_bounded_and_distinguishes_times():
    emb = SinusoidalTimeEmbedding(16)
    e = emb(torch.linspace(0, 1, 50))
    assert e.shape == (50, 16) and bool((e.abs() <= 1).all())
    assert torch.cdist(e, e).fill_diagonal_(1.0).min() > 1e-3
    with pytest.raises(InvalidArgumentError, match="even"):
        SinusoidalTimeEmbedding(5)
