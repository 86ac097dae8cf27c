"""The trainer's per-step shortcuts give the same floats as the general code they stand in for:
CondOT's path sample, uniform times on [0, 1], and the EMA's cached parameter lists."""

from __future__ import annotations

import torch
from torch import nn

from flowforge.paths import CondOT
from flowforge.paths.base import AffinePath
from flowforge.training.ema import EMA
from flowforge.training.time_samplers.draws import unit_draws
from flowforge.training.time_samplers.uniform import Uniform


def _bits(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous().view(torch.uint8)


def test_cond_ot_sample_is_the_affine_formula_bit_for_bit():
    gen = torch.Generator().manual_seed(0)
    x_0, x_1 = torch.randn(64, 3, 5, generator=gen), 3.0 * torch.randn(64, 3, 5, generator=gen)
    for t in (torch.rand(64, generator=gen), torch.rand(64, generator=gen, dtype=torch.float64)):
        fast, general = CondOT().sample(x_0, x_1, t), AffinePath.sample(CondOT(), x_0, x_1, t)
        for name in ("x_t", "dx_t"):
            a, b = getattr(fast, name), getattr(general, name)
            assert a.dtype == b.dtype and torch.equal(_bits(a), _bits(b)), name


def test_uniform_times_on_the_unit_span_are_the_draws():
    sampler, path = Uniform(draws="stratified"), CondOT()
    like = torch.zeros(1)
    t = sampler.sample(257, path, generator=torch.Generator().manual_seed(1), like=like)
    u = unit_draws("stratified", 257, torch.Generator().manual_seed(1), like.device)
    assert torch.equal(t, u.clamp(0.0, 1.0).float())
    inner = sampler.sample(
        257, path, generator=torch.Generator().manual_seed(1), like=like, t_span=(0.2, 0.7)
    )
    assert torch.equal(inner, (0.2 + 0.5 * u).clamp(0.2, 0.7).float())


class _Tied(nn.Module):
    """Two linear maps sharing a weight, and a batch norm whose buffers change every call."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)
        self.b.weight = self.a.weight
        self.norm = nn.BatchNorm1d(4)


def test_ema_follows_parameters_and_reassigned_buffers():
    torch.manual_seed(0)
    model = _Tied()
    ema, reference = EMA(model, 0.9), {k: v.clone() for k, v in model.state_dict().items()}
    for step in range(1, 4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model.norm.running_mean = torch.randn(4)  # a new tensor, not an in-place change
        model.norm.num_batches_tracked += 1
        ema.update(model, step)
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                reference[k] += 0.1 * (v - reference[k])
            elif not v.is_floating_point():
                reference[k] = v.clone()
    for k, v in reference.items():
        torch.testing.assert_close(ema.shadow[k], v, rtol=1e-6, atol=1e-6, msg=k)
    assert torch.equal(ema.shadow["norm.num_batches_tracked"], torch.tensor(3))
