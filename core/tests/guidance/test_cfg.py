"""Classifier-free guidance: its formula, interval and rescale, and composition with DPS."""

from __future__ import annotations

import pytest
import torch

import flowforge
from flowforge.errors import InvalidArgumentError
from flowforge.field import Dynamics
from flowforge.guidance import CFG, DPS, Measurement
from flowforge.operators import Mask
from flowforge.paths import CondOT
from flowforge.targets import GaussianMixture

F64 = torch.float64
PATH = CondOT()
CLASSES = [
    GaussianMixture(means=[[-2.0, 0.0]], stds=0.5),
    GaussianMixture(means=[[2.0, 1.0], [1.0, -1.0]], stds=0.3),
]
UNCONDITIONAL = GaussianMixture(
    means=[[-2.0, 0.0], [2.0, 1.0], [1.0, -1.0]], stds=[0.5, 0.3, 0.3], weights=[0.5, 0.25, 0.25]
)


def field(x, t, label=None):
    """Exact velocities: `label (B,)` of class indices, None for the unconditional model."""
    if label is None:
        return UNCONDITIONAL.predict(x, t, PATH, "velocity")
    per_class = [c.predict(x, t, PATH, "velocity") for c in CLASSES]
    return torch.where(label[:, None] == 1, per_class[1], per_class[0])


LABELS = torch.tensor([0, 1, 1, 0, 1, 0])


def solve(guidance, cond=None, x=None):
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=F64) if x is None else x
    return flowforge.sample(
        field,
        x,
        path="cond_ot",
        prediction="velocity",
        solver="heun",
        nfe=19,
        cond={"label": LABELS} if cond is None else cond,
        guidance=guidance,
    )


def test_scale_one_is_the_conditional_model():
    torch.testing.assert_close(solve([CFG(scale=1.0)]), solve([]), rtol=0, atol=0)


def test_scale_zero_is_the_unconditional_model():
    unconditional = flowforge.sample(
        lambda x, t: field(x, t),
        torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=F64),
        path="cond_ot",
        prediction="velocity",
        solver="heun",
        nfe=19,
    )
    torch.testing.assert_close(solve([CFG(scale=0.0)]), unconditional, rtol=1e-12, atol=1e-12)


def _point():
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    return x, torch.tensor([0.05, 0.2, 0.5, 0.7, 0.95, 0.5], dtype=F64)


@pytest.mark.parametrize("prediction", ["velocity", "noise", "data"])
def test_formula_interval_and_rescale(prediction):
    """u + w (c - u) inside [t_lo, t_hi], c outside; with phi = 1 the output's per-sample std
    is the conditional one's. The same in every prediction kind the model makes."""
    x, t = _point()
    kind_field = lambda x, t, label=None: PATH.convert(
        field(x, t, label), "velocity", prediction, x, t
    )
    c = kind_field(x, t, LABELS)
    u = kind_field(x, t)
    f = Dynamics(
        kind_field, PATH, prediction, [CFG(scale=4.0, interval=(0.1, 0.9))], {"label": LABELS}
    )
    out = f(x, t).value
    inside = ((t >= 0.1) & (t <= 0.9))[:, None]
    torch.testing.assert_close(out, torch.where(inside, u + 4.0 * (c - u), c))
    rescaled = Dynamics(
        kind_field, PATH, prediction, [CFG(scale=4.0, rescale=1.0)], {"label": LABELS}
    )
    torch.testing.assert_close(rescaled(x, t).value.std(1), c.std(1))


def test_a_solve_without_condition_is_refused():
    with pytest.raises(InvalidArgumentError, match="cond="):
        solve([CFG(scale=2.0)], cond={})


def test_interval_must_be_ordered():
    with pytest.raises(InvalidArgumentError, match="interval"):
        CFG(scale=2.0, interval=(0.8, 0.2))


def test_cfg_and_dps_compose():
    """Each keeps its effect: with CFG at scale 1 the pair is DPS alone, with DPS at scale 0 it
    is CFG alone, and guided by both, samples are pulled to the measurement (the second
    coordinate, -1) as DPS pulls them while CFG keeps the classes apart (the first coordinate)."""
    op = Mask(torch.tensor([False, True]), (2,), noise_std=0.2)
    m = Measurement(op, torch.tensor([[-1.0]], dtype=F64))
    dps = DPS(measurement=m, scale=1.0, weighting="gaussian")
    torch.testing.assert_close(solve([CFG(scale=1.0), dps]), solve([dps]), rtol=0, atol=0)
    torch.testing.assert_close(
        solve([CFG(scale=3.0), DPS(measurement=m, scale=0.0)]), solve([CFG(scale=3.0)])
    )
    x = torch.randn(600, 2, generator=torch.Generator().manual_seed(2), dtype=F64)
    labels = torch.arange(600) % 2
    cfg_only = solve([CFG(scale=3.0)], {"label": labels}, x)
    both = solve([CFG(scale=3.0), dps], {"label": labels}, x)
    residual = lambda z: m.residual(z).abs().mean()
    assert residual(both) < 0.25 * residual(cfg_only)
    gap = lambda z: z[labels == 1, 0].mean() - z[labels == 0, 0].mean()
    assert gap(both) > 0.9 * gap(cfg_only) > 4.0
