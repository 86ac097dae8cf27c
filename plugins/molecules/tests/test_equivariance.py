"""Each network's velocity transforms with rotations, reflections, translations, permutations."""

from __future__ import annotations

import pytest
import torch
from flowforge_molecules.models import (
    EGNNParams,
    TensorProductParams,
    build_egnn,
    build_tensor_product,
)
from flowforge_molecules.regressor import PropertyRegressor

F = 11
MODELS = {
    "egnn": lambda: build_egnn(
        EGNNParams(hidden=32, layers=3, self_condition=True), num_features=F, num_properties=2
    ),
    "tensor_product": lambda: build_tensor_product(
        TensorProductParams(scalars=16, vectors=8, layers=2, self_condition=True),
        num_features=F,
        num_properties=2,
    ),
}


def _inputs(gen):
    b, n = 3, 7
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[0, 5:] = False
    x = torch.randn(b, n, F, generator=gen) * mask[..., None]
    sc = torch.randn(b, n, F, generator=gen) * mask[..., None]
    return x, mask, sc, torch.rand(b, generator=gen), torch.randn(b, 2, generator=gen)


def _orthogonal(gen, reflect: bool):
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=gen))
    q = q * torch.sign(torch.det(q))
    return q @ torch.diag(torch.tensor([-1.0, 1.0, 1.0])) if reflect else q


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("reflect", [False, True])
def test_velocity_is_equivariant(name, reflect, float64, generator):
    model = MODELS[name]().double()
    x, mask, sc, t, props = _inputs(generator)
    q, shift = _orthogonal(generator, reflect), torch.randn(1, 1, 3, generator=generator)

    def move(z):
        return torch.cat([z[..., :3] @ q.T + shift, z[..., 3:]], -1) * mask[..., None]

    out = model(x, t, mask=mask, properties=props, self_cond=sc)
    moved = model(move(x), t, mask=mask, properties=props, self_cond=move(sc))
    expected = torch.cat([out[..., :3] @ q.T, out[..., 3:]], -1)
    assert (moved - expected).abs().max() < 1e-4
    assert out[..., :3].sum(1).abs().max() < 1e-10  # zero centre of mass
    assert (out[~mask] == 0).all()


@pytest.mark.parametrize("name", list(MODELS))
def test_velocity_is_permutation_equivariant(name, float64, generator):
    model = MODELS[name]().double()
    x, mask, sc, t, props = _inputs(generator)
    mask[:] = True
    perm = torch.randperm(x.shape[1], generator=generator)
    out = model(x, t, mask=mask, properties=props, self_cond=sc)
    permuted = model(x[:, perm], t, mask=mask, properties=props, self_cond=sc[:, perm])
    assert (permuted - out[:, perm]).abs().max() < 1e-4


@pytest.mark.parametrize("name", list(MODELS))
def test_null_condition_differs_from_a_property(name, float64, generator):
    model = MODELS[name]().double()
    with torch.no_grad():
        model.null.normal_(generator=generator)
    x, mask, _sc, t, props = _inputs(generator)
    cond = model(x, t, mask=mask, properties=props)
    null = model(x, t, mask=mask, properties=None)
    nan_rows = model(x, t, mask=mask, properties=torch.full_like(props, torch.nan))
    assert torch.allclose(null, nan_rows)
    assert not torch.allclose(cond, null)


def test_regressor_is_invariant(float64, generator):
    reg = PropertyRegressor(F, 2, hidden=16, layers=2).double()
    x, mask, *_ = _inputs(generator)
    q = _orthogonal(generator, True)
    moved = torch.cat([x[..., :3] @ q.T + 1.5, x[..., 3:]], -1) * mask[..., None]
    assert (reg(moved, mask) - reg(x, mask)).abs().max() < 1e-4
