"""Likelihoods: the ELBO equals the any-order AR likelihood in expectation over orders, the MC
bound estimates it, and a trained model's bound sits just above a known entropy rate."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from flowforge.discrete import (
    DiscreteDiffusion,
    MaskedPath,
    any_order_nll,
    clean_log_probs,
    nll_bound,
    token_nll,
)
from flowforge.spec.models import TrainSpec
from flowforge.targets import MarkovChain
from flowforge.training import Trainer

from .conftest import ExactDenoiser, TinyNet, random_joint

LOG2 = math.log(2)


def exact_elbo(model, x: torch.Tensor, path: MaskedPath) -> torch.Tensor:
    """The continuous-time bound summed exactly: with lambda the masking probability,
    int_0^1 (1/lambda) C(L,k) lambda^k (1-lambda)^(L-k) d lambda = 1/k, so the bound is the mean
    over mask sets S of each size k of (1/k) sum_{l in S} -log p(x^l | x outside S), summed over k.
    """
    batch, length = x.shape
    total = torch.zeros(batch, dtype=torch.float64)
    for k in range(1, length + 1):
        sets = list(itertools.combinations(range(length), k))
        for s in sets:
            masked = torch.zeros(length, dtype=torch.bool)
            masked[list(s)] = True
            x_t = torch.where(masked, path.mask_id, x)
            log_p = clean_log_probs(model(x_t, torch.full((batch,), 0.5)), x_t, path)
            nll = token_nll(log_p, x)[:, masked].sum(1).double()
            total += nll / k / len(sets)
    return total


def _net(length=4, vocab=3):
    torch.manual_seed(0)
    net = TinyNet(vocab, length, width=32, time_input=False).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)  # a sharply non-uniform model, far from factorised
    return net


def test_any_order_expectation_equals_exact_elbo():
    """E over all L! orders of the exact any-order NLL = the ELBO, to float precision."""
    vocab, length = 3, 4
    net, path = _net(length, vocab), MaskedPath(vocab_size=vocab)
    x = torch.randint(0, vocab, (5, length), generator=torch.Generator().manual_seed(1))
    orders = list(itertools.permutations(range(length)))
    ao = torch.stack([any_order_nll(net, x, path, torch.tensor([o] * 5)) for o in orders]).mean(0)
    elbo = exact_elbo(net, x, path)
    torch.testing.assert_close(ao, elbo, rtol=1e-5, atol=1e-5)
    spread = torch.stack([any_order_nll(net, x, path, torch.tensor([o] * 5)) for o in orders[:6]])
    assert float(spread.std(0).max()) > 0.1, "orders must differ, or the test proves nothing"


def test_mc_bound_estimates_the_elbo():
    """The stratified Monte Carlo bound agrees with the exact ELBO within 4 standard errors."""
    vocab, length = 3, 4
    net, path = _net(length, vocab), MaskedPath(vocab_size=vocab)
    x = torch.randint(0, vocab, (4, length), generator=torch.Generator().manual_seed(2))
    elbo = exact_elbo(net, x, path)
    gen = torch.Generator().manual_seed(3)
    runs = torch.stack(
        [nll_bound(net, x, path, num_timesteps=8, generator=gen).nats for _ in range(300)]
    )
    se = runs.std(0) / math.sqrt(runs.shape[0])
    assert bool(((runs.mean(0) - elbo).abs() < 4 * se + 1e-6).all()), (runs.mean(0), elbo, se)


def test_bound_of_the_exact_model_is_above_the_true_nll():
    """For the exact denoiser of a joint table the ELBO is an upper bound of -log p(x)."""
    vocab, length = 3, 3
    probs = random_joint(vocab, length, seed=4)
    model, path = ExactDenoiser(probs, vocab, length), MaskedPath(vocab_size=vocab)
    x = model.table
    true_nll = -model.probs.log()
    elbo = exact_elbo(model, x, path)
    assert bool((elbo >= true_nll - 1e-6).all())
    # and the any-order model of one fixed order is exact for the exact denoiser
    ao = any_order_nll(model, x, path, torch.arange(length).expand(len(x), length))
    torch.testing.assert_close(ao, true_nll, rtol=1e-5, atol=1e-5)


# p(next | previous two = a, b); doubly stochastic, so the stationary distribution is uniform
TRANS = torch.tensor(
    [
        [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]],
        [[0.1, 0.1, 0.8], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1]],
        [[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]],
    ]
)


def markov_chain(n: int, length: int, gen: torch.Generator):
    """Sequences of an order-2 Markov chain on 3 symbols, its entropy rate and its exact
    entropy per token of a length-`length` sequence (bits)."""
    chain = MarkovChain(TRANS)
    rate = float(-(chain.trans * chain.trans.log2()).sum(-1).mean())  # equal for every context
    return chain.sample(n, length, gen), rate, chain.entropy_bits_per_token(length)


@pytest.mark.slow
def test_trained_bound_is_above_the_entropy_and_close():
    gen = torch.Generator().manual_seed(0)
    length = 8
    train, rate, exact = markov_chain(20000, length, gen)
    test, _, _ = markov_chain(2000, length, gen)
    path = MaskedPath(vocab_size=3)
    torch.manual_seed(0)
    net = TinyNet(3, length, width=256, time_input=False)
    spec = TrainSpec(steps=1500, batch_size=256, lr=2e-3, ema_decay=0.99, log_every=500)
    Trainer(net, DiscreteDiffusion(path, train), spec, generator=gen).fit()
    net.eval()
    bound = nll_bound(net, test, path, num_timesteps=16, generator=gen).bits_per_token
    assert bound > exact - 0.01, (bound, exact)
    assert bound < exact + 0.12, (
        f"bound {bound:.3f} bits/token vs entropy {exact:.3f} (rate {rate:.3f})"
    )
