"""The product path (Gaussian positions, discrete types and charges): equivariance of the head,
training, sampling with the core mixed sampler (zero centre of mass, every atom unmasked)."""

from __future__ import annotations

import pytest
import torch
from flowforge_molecules.elements import CHARGES
from flowforge_molecules.models import (
    EGNNParams,
    TensorProductParams,
    build_egnn,
    build_tensor_product,
)
from flowforge_molecules.models.product_head import ProductField
from flowforge_molecules.product import ProductEncoding
from flowforge_molecules.product_objective import ProductObjective
from flowforge_molecules.product_sampling import sample_product

from flowforge.errors import InvalidArgumentError
from flowforge.paths import CondOT
from flowforge.spec.models import TrainSpec
from flowforge.training.trainer import Trainer

ELEMENTS = ("H", "C", "N", "O", "F")
ENC = ProductEncoding(ELEMENTS, CondOT())
TRUNKS = {
    "egnn": lambda f: build_egnn(EGNNParams(hidden=32, layers=3), num_features=f, num_properties=2),
    "tensor_product": lambda f: build_tensor_product(
        TensorProductParams(scalars=16, vectors=8, layers=2), num_features=f, num_properties=2
    ),
}


def _head(name: str, enc: ProductEncoding = ENC) -> ProductField:
    return ProductField(TRUNKS[name](enc.num_features), *enc.num_states)


@pytest.mark.parametrize("name", list(TRUNKS))
@pytest.mark.parametrize("reflect", [False, True])
def test_positions_equivariant_and_logits_invariant(
    name, reflect, float64, generator, product_state, orthogonal
):
    model = _head(name).double()
    x = product_state
    t, props = torch.rand(3, generator=generator), torch.randn(3, 2, generator=generator)
    q, shift = orthogonal(reflect), torch.randn(1, 1, 3, generator=generator)
    moved = {**x, "pos": (x["pos"] @ q.T + shift) * x["mask"][..., None]}
    out = model(x, t, properties=props)
    out_moved = model(moved, t, properties=props)
    assert (out_moved["pos"] - out["pos"] @ q.T).abs().max() < 1e-4
    for k in ("atom_type", "charge"):
        assert (out_moved[k] - out[k]).abs().max() < 1e-4
    assert (out["atom_type"].shape[-1], out["charge"].shape[-1]) == ENC.num_states
    assert out["pos"].sum(1).abs().max() < 1e-10  # zero centre of mass
    assert out["pos"][~x["mask"]].abs().max() == 0


@pytest.mark.parametrize("name", list(TRUNKS))
def test_outputs_permute_with_the_atoms(name, float64, generator, product_state):
    model = _head(name).double()
    x = product_state
    x["mask"][:] = True
    perm = torch.randperm(7, generator=generator)
    t = torch.rand(3, generator=generator)
    out = model(x, t)
    permuted = model({k: v[:, perm] for k, v in x.items()}, t)
    for k in ("pos", "atom_type", "charge"):
        assert (permuted[k] - out[k][:, perm]).abs().max() < 1e-4


def test_encoding_round_trip_and_source(fixture_dataset, generator):
    state = fixture_dataset.states()["train"]
    x = ENC.encode(state)
    back = ENC.decode(x)
    assert torch.equal(back.atom_type, state.atom_type * state.mask)
    assert torch.equal(back.charge, state.charge * state.mask)
    noise = ENC.source(state.mask[:16], generator)
    assert (noise["atom_type"] == len(ELEMENTS)).all() and (noise["charge"] == len(CHARGES)).all()
    assert (noise["pos"] * state.mask[:16, :, None]).sum(1).abs().max() < 1e-5
    with pytest.raises(InvalidArgumentError, match="masked atom_type"):
        ENC.decode({**x, "atom_type": torch.full_like(x["atom_type"], len(ELEMENTS))})


def _val_loss(model, objective) -> float:
    batch = objective.draw(80, torch.Generator().manual_seed(123))
    with torch.no_grad():
        return float(objective.loss(model, batch).mean())


@pytest.fixture(scope="module")
def trained(fixture_dataset):
    torch.manual_seed(0)
    states = fixture_dataset.states()
    model = ProductField(
        build_egnn(EGNNParams(hidden=32, layers=2), num_features=ENC.num_features),
        *ENC.num_states,
    )
    train = ProductObjective(ENC, "velocity", ENC.encode(states["train"]))
    val = ProductObjective(ENC, "velocity", ENC.encode(states["val"]))
    before = _val_loss(model, val)
    config = TrainSpec(steps=120, batch_size=32, lr=2e-3, ema_decay=0.0, log_every=50)
    Trainer(model, train, config, generator=torch.Generator().manual_seed(0)).fit()
    model.eval()
    return model, before, _val_loss(model, val)


def test_short_training_lowers_validation_loss(trained):
    _, before, after = trained
    assert after < 0.6 * before


@pytest.mark.parametrize(
    "solver,discrete",
    [("euler", "ancestral"), ("euler_maruyama", "tau_leaping"), ("dpm_solver_pp", "ctmc_euler")],
)
def test_samples_are_unmasked_with_zero_centre_of_mass(trained, solver, discrete):
    model, *_ = trained
    n_atoms = torch.tensor([3, 9, 12, 15])
    state = sample_product(
        model,
        ENC,
        "velocity",
        n_atoms,
        solver=solver,
        discrete_solver=discrete,
        nfe=8,
        max_atoms=16,
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
    )
    real = state.mask
    assert torch.equal(real.sum(1), n_atoms)
    assert (state.pos * real[..., None]).sum(1).abs().max() < 1e-4
    assert (state.pos[~real] == 0).all() and torch.isfinite(state.pos).all()
    assert ((state.atom_type >= 0) & (state.atom_type < len(ELEMENTS)))[real].all()
    assert torch.isin(state.charge[real], torch.tensor(CHARGES)).all()


def test_uniform_discrete_path_trains_and_samples(fixture_dataset):
    enc = ProductEncoding(ELEMENTS, CondOT(), "uniform")
    assert enc.num_states == (len(ELEMENTS), len(CHARGES))
    model = _head("egnn", enc)
    data = enc.encode(fixture_dataset.states()["train"])
    objective = ProductObjective(enc, "velocity", data)
    config = TrainSpec(steps=3, batch_size=8, lr=1e-3, ema_decay=0.0, log_every=1)
    Trainer(model, objective, config, generator=torch.Generator().manual_seed(0)).fit()
    state = sample_product(
        model.eval(),
        enc,
        "velocity",
        torch.tensor([4, 6]),
        solver="euler",
        discrete_solver="ancestral",
        nfe=4,
        max_atoms=6,
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
        properties=None,
    )
    assert (state.atom_type[state.mask] < len(ELEMENTS)).all()
