"""Markov-chain targets: normalised exact likelihoods, causal conditionals, samples that follow
the table, and the exact entropy per token."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from flowforge.errors import InvalidArgumentError
from flowforge.targets import MarkovChain


def chain(seed: int = 0, order: int = 2, vocab: int = 3) -> MarkovChain:
    gen = torch.Generator().manual_seed(seed)
    return MarkovChain(torch.rand((vocab,) * (order + 1), generator=gen) ** 3 + 0.01)


def test_likelihood_is_normalised_and_entropy_is_exact():
    """Over all V^L sequences: sum p = 1 and -sum p log2 p / L = entropy_bits_per_token."""
    c, length = chain(), 5
    every = torch.tensor(list(itertools.product(range(3), repeat=length)))
    log_p = c.log_prob(every)
    assert float(log_p.exp().sum()) == pytest.approx(1.0, abs=1e-12)
    brute = float(-(log_p.exp() * log_p).sum()) / math.log(2) / length
    assert c.entropy_bits_per_token(length) == pytest.approx(brute, rel=1e-12)
    # a non-stationary table: the entropy is not the first step's value repeated
    assert c.entropy_bits_per_token(40) != pytest.approx(c.entropy_bits_per_token(3), rel=1e-3)


def test_conditionals_are_causal_and_samples_follow_them():
    c = chain(seed=1)
    x = c.sample(20000, 6, torch.Generator().manual_seed(2))
    y = x.clone()
    y[:, 4] = (y[:, 4] + 1) % 3
    torch.testing.assert_close(c.next_log_probs(x)[:, :5], c.next_log_probs(y)[:, :5])
    assert not torch.allclose(c.next_log_probs(x)[:, 5], c.next_log_probs(y)[:, 5])
    # empirical next-token frequencies after the context (0, 1) match the table
    after = x[(x[:, 3] == 0) & (x[:, 4] == 1), 5]
    freq = torch.bincount(after, minlength=3).double() / len(after)
    assert len(after) > 500
    torch.testing.assert_close(freq, c.trans[0, 1], atol=0.05, rtol=0)


def test_bad_table_is_refused():
    with pytest.raises(InvalidArgumentError, match="trans must be"):
        MarkovChain(torch.ones(3, 2))
