"""Self-conditioning on the product state: the estimate's layout and values, equivariance of a
self-conditioned head, the training objective's two passes, and the sampler feeding each call the
estimate of the call before."""

from __future__ import annotations

import pytest
import torch
from flowforge_molecules.models import EGNNParams, build_egnn
from flowforge_molecules.models.product_head import ProductField
from flowforge_molecules.product import ProductEncoding
from flowforge_molecules.product_objective import ProductObjective
from flowforge_molecules.product_sampling import GuidedProduct, sample_product
from flowforge_molecules.product_self_conditioning import product_estimate

from flowforge.discrete import clean_log_probs
from flowforge.guidance.cfg import CFG
from flowforge.paths import CondOT
from flowforge.spec.models import TrainSpec
from flowforge.training.trainer import Trainer

ELEMENTS = ("H", "C", "N", "O", "F")
ENC = ProductEncoding(ELEMENTS, CondOT())


def _head(hidden: int = 32, layers: int = 3) -> ProductField:
    trunk = build_egnn(
        EGNNParams(hidden=hidden, layers=layers, self_condition=True),
        num_features=ENC.num_features,
    )
    return ProductField(trunk, *ENC.num_states)


def test_estimate_is_the_data_estimate_and_clean_probabilities(generator, product_state):
    x = product_state
    t = torch.rand(3, generator=generator)
    types, charges = ENC.num_states
    out = {
        "pos": torch.randn(3, 7, 3, generator=generator),
        "atom_type": torch.randn(3, 7, types, generator=generator),
        "charge": torch.randn(3, 7, charges, generator=generator),
    }
    est = product_estimate(out, x, t, ENC, "velocity")
    real = x["mask"]
    assert est.shape == (3, 7, ENC.num_features)
    assert (est[~real] == 0).all()
    expected = x["pos"] + (1 - t)[:, None, None] * out["pos"]  # cond_ot: x_1 = x_t + (1 - t) v
    assert torch.allclose(est[..., :3][real], expected[real], atol=1e-6)
    type_probs = est[..., 3 : 3 + types]
    assert torch.allclose(type_probs[real].sum(-1), torch.ones(int(real.sum())), atol=1e-6)
    assert (type_probs[..., -1] == 0).all()  # no probability on the mask token
    path = ENC.path.paths["atom_type"]
    known = real & (x["atom_type"] != path.mask_id)
    hot = torch.nn.functional.one_hot(x["atom_type"][known], types).float()
    assert torch.equal(type_probs[known], hot)  # an unmasked atom keeps its type
    masked = real & (x["atom_type"] == path.mask_id)
    probs = clean_log_probs(out["atom_type"], x["atom_type"], path).exp()
    assert torch.allclose(type_probs[masked][:, :-1], probs[masked], atol=1e-6)


@pytest.mark.parametrize("reflect", [False, True])
def test_self_conditioned_head_is_equivariant(
    reflect, float64, generator, product_state, orthogonal
):
    model = _head().double()
    x = product_state
    t = torch.rand(3, generator=generator)
    est = torch.rand(3, 7, ENC.num_features, generator=generator) * x["mask"][..., None]
    q = orthogonal(reflect)
    shift = torch.randn(1, 1, 3, generator=generator)
    real = x["mask"][..., None]
    moved = {**x, "pos": (x["pos"] @ q.T + shift) * real}
    est_moved = torch.cat([(est[..., :3] @ q.T + shift) * real, est[..., 3:]], -1)
    out = model(x, t, self_cond=est)
    out_moved = model(moved, t, self_cond=est_moved)
    assert (out_moved["pos"] - out["pos"] @ q.T).abs().max() < 1e-4
    for k in ("atom_type", "charge"):
        assert (out_moved[k] - out[k]).abs().max() < 1e-4
    # the estimate is read: another one changes the output
    assert (model(x, t, self_cond=est.flip(0) * real)["pos"] - out["pos"]).abs().max() > 1e-6


class _Spy(torch.nn.Module):
    """A self-conditioned head that records each call: its estimate, whether gradients were on,
    its state, time and output."""

    self_conditioning = True

    def __init__(self, head: ProductField):
        super().__init__()
        self.head, self.seen = head, []

    def forward(self, state, t, properties=None, self_cond=None):
        out = self.head(state, t, properties=properties, self_cond=self_cond)
        self.seen.append((self_cond, torch.is_grad_enabled(), state, t, out))
        return out


def test_objective_conditions_half_the_molecules_on_a_first_pass(fixture_dataset):
    data = ENC.encode(fixture_dataset.states()["train"])
    objective = ProductObjective(ENC, "velocity", data, self_condition=True)
    plain = ProductObjective(ENC, "velocity", data)
    batch = objective.draw(64, torch.Generator().manual_seed(3))
    same = plain.draw(64, torch.Generator().manual_seed(3))
    for k, v in same.items():  # self-conditioning draws after everything else
        assert torch.equal(batch[k], v), k
    chosen = batch["self_cond"]
    assert 0 < int(chosen.sum()) < 64
    spy = _Spy(_head(16, 2))
    objective.loss(spy, batch).mean().backward()
    (first, first_grad, *_), (second, second_grad, *_) = spy.seen
    assert first is None and not first_grad and second_grad
    assert (second[~chosen] == 0).all()
    assert (second[chosen].abs().sum((1, 2)) > 0).all()
    assert second.shape == (64, data["pos"].shape[1], ENC.num_features)


def test_training_lowers_loss_and_samples_feed_back_their_estimate(fixture_dataset):
    torch.manual_seed(0)
    states = fixture_dataset.states()
    model = _head(32, 2)
    train = ProductObjective(ENC, "velocity", ENC.encode(states["train"]), self_condition=True)
    val = ProductObjective(ENC, "velocity", ENC.encode(states["val"]), self_condition=True)
    gen_val = torch.Generator().manual_seed(123)
    batch = val.draw(80, gen_val)
    with torch.no_grad():
        before = float(val.loss(model, batch).mean())
    config = TrainSpec(steps=120, batch_size=32, lr=2e-3, ema_decay=0.0, log_every=50)
    Trainer(model, train, config, generator=torch.Generator().manual_seed(0)).fit()
    model.eval()
    with torch.no_grad():
        after = float(val.loss(model, batch).mean())
    assert after < 0.6 * before
    spy = _Spy(model)
    n_atoms = torch.tensor([3, 9, 12])
    state = sample_product(
        spy,
        ENC,
        "velocity",
        n_atoms,
        solver="euler",
        discrete_solver="ancestral",
        nfe=6,
        max_atoms=12,
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
    )
    assert torch.equal(state.mask.sum(1), n_atoms)
    assert (state.pos * state.mask[..., None]).sum(1).abs().max() < 1e-4
    assert len(spy.seen) == 6 and spy.seen[0][0] is None
    for (est, *_), (_, _, x, t, out) in zip(spy.seen[1:], spy.seen[:-1], strict=True):
        assert torch.allclose(est, product_estimate(out, x, t, ENC, "velocity"))


def test_both_guided_calls_read_the_estimate(generator, product_state):
    spy = _Spy(_head(16, 2))
    guided = GuidedProduct(spy, CFG(scale=2.0), ENC, "velocity")
    t = torch.rand(3, generator=generator)
    est = torch.rand(3, 7, ENC.num_features, generator=generator)
    with torch.no_grad():
        guided(product_state, t, self_cond=est, properties=None)
    assert len(spy.seen) == 2 and all(seen[0] is est for seen in spy.seen)
