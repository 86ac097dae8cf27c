"""The autoregressive baseline against an order-2 Markov chain with exact likelihoods: the NLL of
a hand-built exact model, a trained model near the entropy and below the diffusion bound, early
stopping by validation, and the data-parallel split of its batches."""

from __future__ import annotations

import pytest
import torch
from flowforge_discrete import autoregressive
from flowforge_discrete.models import TransformerParams, build_transformer
from flowforge_discrete.selection import KeepBest

from flowforge.discrete import DiscreteDiffusion, MaskedPath, nll_bound
from flowforge.spec.models import TrainSpec
from flowforge.targets import MarkovChain
from flowforge.training import Trainer

LOG2 = 0.6931471805599453
BOS = 3


def chain() -> MarkovChain:
    """A sharp, non-stationary order-2 chain on 3 symbols."""
    gen = torch.Generator().manual_seed(0)
    return MarkovChain(torch.rand(3, 3, 3, generator=gen) ** 4 + 0.02)


def exact_model(c: MarkovChain):
    """The causal model `[BOS, x_1 .. x_{L-1}] -> log p(x_l | x_<l)` of the chain, exactly."""

    def model(inputs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if not bool((inputs[:, 0] == BOS).all()):
            raise AssertionError("the input must start with BOS")
        past = torch.cat([inputs[:, 1:], torch.zeros_like(inputs[:, :1])], dim=1)
        return c.next_log_probs(past).float()

    return model


def test_nll_of_the_exact_model_is_the_exact_likelihood():
    c = chain()
    x = c.sample(64, 10, torch.Generator().manual_seed(1))
    nll = autoregressive.nll(exact_model(c), x, bos=BOS)
    torch.testing.assert_close(nll, -c.log_prob(x), rtol=1e-5, atol=1e-4)
    # not by accident: the chain is sharp, so sequences differ widely in likelihood
    assert float(nll.std()) > 1.0


def test_samples_of_the_exact_model_follow_the_chain():
    c = chain()
    x, calls = autoregressive.sample(
        exact_model(c), 8000, 6, BOS, torch.Generator().manual_seed(2), "cpu"
    )
    assert calls == 6
    for a, b in [(0, 1), (2, 2)]:
        after = x[(x[:, 3] == a) & (x[:, 4] == b), 5]
        assert len(after) > 200
        freq = torch.bincount(after, minlength=3).double() / len(after)
        torch.testing.assert_close(freq, c.trans[a, b], atol=0.08, rtol=0)


def _transformer(causal: bool, length: int):
    torch.manual_seed(0)
    params = TransformerParams(dim=32, depth=2, heads=2, time_input=False)
    return build_transformer(params, (length,), 3, 4, causal=causal)


@pytest.mark.slow
def test_trained_ar_is_near_the_entropy_and_below_the_diffusion_bound():
    """Same size, same steps: the AR model's exact NLL sits just above the chain's entropy, and
    below the masked-diffusion bound (which is loose by the ELBO gap)."""
    c, length = chain(), 12
    gen = torch.Generator().manual_seed(3)
    train, test = c.sample(20000, length, gen), c.sample(2000, length, gen)
    entropy = c.entropy_bits_per_token(length)
    spec = TrainSpec(steps=250, batch_size=128, lr=3e-3, ema_decay=0.99, lr_warmup=20)
    path = MaskedPath(vocab_size=3)
    ar, diffusion = _transformer(True, length), _transformer(False, length)
    for model, objective in [
        (ar, autoregressive.Autoregressive(train, 3)),
        (diffusion, DiscreteDiffusion(path, train)),
    ]:
        trainer = Trainer(model, objective, spec, generator=torch.Generator().manual_seed(4))
        trainer.fit()
        model.load_state_dict(trainer.ema.state_dict())
        model.eval()
    ar_bits = float(autoregressive.nll(ar, test, BOS).sum()) / test.numel() / LOG2
    bound = nll_bound(diffusion, test, path, num_timesteps=16, generator=gen).bits_per_token
    assert entropy - 0.02 < ar_bits < entropy + 0.05, (ar_bits, entropy)
    assert ar_bits < bound, (ar_bits, bound)


@pytest.mark.slow
def test_keep_best_stops_an_overfitting_ar_model_early():
    """Trained far past its best on 24 sequences, the AR model's final weights overfit; the
    weights kept by validation have a lower held-out NLL than the final ones."""
    c, length = chain(), 16
    gen = torch.Generator().manual_seed(5)
    train, val, test = (c.sample(n, length, gen) for n in (24, 400, 400))
    model, path = _transformer(True, length), MaskedPath(vocab_size=3)
    spec = TrainSpec(steps=160, batch_size=24, lr=3e-3, ema_decay=0.9, eval_every=20)
    keep = KeepBest(val, "autoregressive", path)
    trainer = Trainer(model, autoregressive.Autoregressive(train, 3), spec, generator=gen)
    trainer.fit(evaluate=keep)
    assert len(keep.history) == 8 and keep.best == min(keep.history)
    assert keep.best_call < len(keep.history) - 1, "trained past its best"

    def bits(x):
        return float(autoregressive.nll(model.eval(), x, BOS).sum()) / x.numel() / LOG2

    model.load_state_dict(trainer.ema.state_dict())
    final_train, final_test = bits(train), bits(test)
    model.load_state_dict(keep.state)
    assert keep.best == pytest.approx(bits(val), rel=1e-5)
    assert final_train < c.entropy_bits_per_token(length) - 0.2, "memorised the training set"
    assert bits(test) < final_test - 0.1, (bits(test), final_test)


def test_parts_of_a_draw_make_up_the_whole_draw():
    """Data-parallel training: each process keeps its rows of the batch drawn for all of them."""
    data = chain().sample(50, 8, torch.Generator().manual_seed(6))
    objective = autoregressive.Autoregressive(data, 3)
    whole = objective.draw(12, torch.Generator().manual_seed(7))
    parts = [
        objective.draw(12, torch.Generator().manual_seed(7), part=slice(i, i + 4))
        for i in range(0, 12, 4)
    ]
    assert torch.equal(torch.cat([p["x"] for p in parts]), whole["x"])
    model = _transformer(True, 8).eval()
    with torch.no_grad():
        total = objective.loss(model, whole).sum()
        summed = sum(objective.loss(model, p).sum() for p in parts)
    torch.testing.assert_close(summed, total)
