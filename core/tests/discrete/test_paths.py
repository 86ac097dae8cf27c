"""Discrete paths: the forward marginals and the ELBO weight against their closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from flowforge import registry
from flowforge.discrete import Geometric, LogLinear, MaskedPath, NoiseSchedule, UniformPath

F64 = torch.float64


@pytest.mark.parametrize("schedule", ["log_linear", "geometric"])
def test_masking_marginal_is_one_minus_exp_minus_sigma(schedule):
    """Histogram of masked tokens per time against 1 - exp(-sigma(t)), within 5 binomial sigmas."""
    path = MaskedPath(vocab_size=7, schedule=schedule, eps=1e-3)
    gen = torch.Generator().manual_seed(0)
    times = torch.tensor([0.02, 0.2, 0.5, 0.8, 0.97])
    n, length = 4000, 16
    x_1 = torch.randint(0, 7, (n, length), generator=gen)
    for t in times:
        x_t = path.corrupt(x_1, t.expand(n), gen)
        frac = (x_t == path.mask_id).double().mean()
        p = 1 - math.exp(-float(path.noise_schedule.sigma(t.double())))
        se = math.sqrt(p * (1 - p) / (n * length)) + 1e-12
        assert abs(float(frac) - p) < 5 * se + 1e-9, (float(t), float(frac), p)
        unmasked = x_t != path.mask_id
        assert torch.equal(x_t[unmasked], x_1[unmasked]), "kept tokens must be the data"


def test_uniform_marginal():
    path = UniformPath(vocab_size=5)
    gen = torch.Generator().manual_seed(1)
    n = 60000
    x_1 = torch.zeros(n, 1, dtype=torch.long)
    for t in (0.1, 0.6):
        x_t = path.corrupt(x_1, torch.full((n,), t), gen)
        a = float(path.noise_schedule.alpha(torch.tensor(t, dtype=F64)))
        p = a + (1 - a) / 5
        frac = float((x_t == 0).double().mean())
        assert abs(frac - p) < 5 * math.sqrt(p * (1 - p) / n)
        assert int(x_t.max()) < 5


def test_padding_is_never_corrupted():
    path = MaskedPath(vocab_size=4)
    x_1 = torch.tensor([[1, 2, 3, 3]] * 64)
    valid = torch.tensor([[True, True, False, False]] * 64)
    x_t = path.corrupt(x_1, torch.full((64,), 0.0), torch.Generator().manual_seed(0), valid)
    assert torch.equal(x_t[:, 2:], x_1[:, 2:]) and bool((x_t[:, :2] == 4).all())


@pytest.mark.parametrize(
    ("schedule", "closed_form"),
    [
        (LogLinear(eps=0.0), lambda t: 1 / (1 - t)),
        (LogLinear(eps=0.05), lambda t: 1 / (1 - t)),
        (
            Geometric(1e-4, 20.0),
            lambda t: (g := 1e-4**t * 20.0 ** (1 - t)) * math.log(20.0 / 1e-4) / torch.expm1(g),
        ),
    ],
)
def test_elbo_weight_matches_closed_form(schedule, closed_form):
    """The generic alpha'/(1-alpha), from sigma and d_sigma, equals the closed form."""
    t = torch.linspace(0.01, 0.99, 99, dtype=F64)
    generic = NoiseSchedule.elbo_weight(schedule, t)
    torch.testing.assert_close(generic, closed_form(t), rtol=1e-9, atol=0)
    torch.testing.assert_close(schedule.elbo_weight(t), closed_form(t), rtol=1e-9, atol=0)
    alpha = schedule.alpha(t)
    torch.testing.assert_close(schedule.d_alpha(t) / (1 - alpha), closed_form(t), rtol=1e-9, atol=0)


@pytest.mark.parametrize("schedule", [LogLinear(eps=1e-3), Geometric(1e-3, 10.0)])
def test_d_sigma_matches_finite_differences(schedule):
    t, h = torch.linspace(0.05, 0.95, 19, dtype=F64), 1e-6
    fd = (schedule.sigma(t + h) - schedule.sigma(t - h)) / (2 * h)
    torch.testing.assert_close(schedule.d_sigma(t), fd, rtol=1e-6, atol=1e-8)
    assert bool((schedule.sigma(t).diff() < 0).all()), "sigma decreases from noise to data"


def test_registered_with_vocab_from_data():
    path = registry.create("path", "masked", schedule="geometric")
    assert path.with_vocab(9).mask_id == 9
    with pytest.raises(Exception, match="vocab_size"):
        registry.create("path", "masked", vocab_size=3).with_vocab(4)
