"""Training lowers the validation loss; sampling keeps zero centre of mass with every kind of
solver; property guidance moves a linear property in the requested direction."""

from __future__ import annotations

import pytest
import torch
from flowforge_molecules.encoding import OneHotEncoding
from flowforge_molecules.models import EGNNParams, build_egnn
from flowforge_molecules.objective import MoleculeObjective
from flowforge_molecules.sampling import sample_molecules

from flowforge.guidance.classifier import Classifier
from flowforge.paths import CondOT
from flowforge.solvers.dopri5 import Dopri5
from flowforge.spec.models import TrainSpec
from flowforge.training.trainer import Trainer


def _objective(state, enc, **kw):
    return MoleculeObjective(CondOT(), "velocity", enc, enc.encode(state), state.mask, **kw)


def _val_loss(model, objective) -> float:
    batch = objective.draw(80, torch.Generator().manual_seed(123))
    with torch.no_grad():
        return float(objective.loss(model, batch).mean())


@pytest.fixture(scope="module")
def trained(fixture_dataset):
    torch.manual_seed(0)
    states = fixture_dataset.states()
    enc = OneHotEncoding(fixture_dataset.elements)
    model = build_egnn(EGNNParams(hidden=32, layers=2), num_features=enc.num_features)
    train = _objective(states["train"], enc)
    val = _objective(states["val"], enc)
    before = _val_loss(model, val)
    config = TrainSpec(steps=120, batch_size=32, lr=2e-3, ema_decay=0.0, log_every=50)
    Trainer(model, train, config, generator=torch.Generator().manual_seed(0)).fit()
    model.eval()
    return model, enc, before, _val_loss(model, val)


def test_short_training_lowers_validation_loss(trained):
    _, _, before, after = trained
    assert after < 0.8 * before


@pytest.mark.parametrize(
    "solver,nfe",
    [
        ("euler", 8),
        ("heun", 7),
        ("euler_maruyama", 8),
        ("dpm_solver_pp", 8),
        (Dopri5(rtol=1e-3, atol=1e-3), None),
    ],
)
def test_samples_keep_zero_centre_of_mass(trained, solver, nfe):
    model, enc, *_ = trained
    n_atoms = torch.tensor([3, 9, 12, 15])
    state = sample_molecules(
        model,
        CondOT(),
        "velocity",
        enc,
        n_atoms,
        solver=solver,
        nfe=nfe,
        max_atoms=16,
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
    )
    com = (state.pos * state.mask[..., None]).sum(1)
    assert com.abs().max() < 1e-4
    assert torch.equal(state.mask.sum(1), n_atoms)
    assert (state.pos[~state.mask] == 0).all()
    assert torch.isfinite(state.pos).all()


def test_property_guidance_moves_a_linear_property(trained):
    """Toy linear property: the summed carbon feature of the state; guidance up vs down."""
    model, enc, *_ = trained
    carbon = 3 + enc.elements.index("C")

    def carbon_count(direction: float):
        guide = Classifier(scale=2.0, log_likelihood=lambda z, t: direction * z[..., carbon].sum(1))
        state = sample_molecules(
            model,
            CondOT(),
            "velocity",
            enc,
            torch.full((32,), 9),
            solver="euler",
            nfe=20,
            max_atoms=9,
            guidance=[guide],
            generator=torch.Generator().manual_seed(1),
            device=torch.device("cpu"),
        )
        return float((state.atom_type == enc.elements.index("C")).float().sum(1).mean())

    up, down = carbon_count(+1.0), carbon_count(-1.0)
    assert up > down + 1.0
