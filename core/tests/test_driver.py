"""The `flowforge.sample` driver: exact NFE, t_span, per-sample times, trajectories, errors."""

from __future__ import annotations

import pytest
import torch

import flowforge
from flowforge.errors import InvalidArgumentError, NumericalError, SpecError
from flowforge.guidance import Guidance
from flowforge.targets import GaussianMixture

GM = GaussianMixture(means=[[-1.0, 0.0], [1.0, 0.5]], stds=[0.4, 0.5])


class Counting:
    """A field that counts its calls and returns the exact cond_ot velocity."""

    def __init__(self, path="cond_ot"):
        self.calls = 0
        self.inner = GM.field(flowforge.registry.create("path", path), "velocity")

    def __call__(self, x, t):
        self.calls += 1
        return self.inner(x, t)


@pytest.mark.parametrize(
    ("solver", "nfe"), [("euler", 7), ("heun", 9), ("midpoint", 6), ("rk4", 12)]
)
def test_nfe_is_exact(solver, nfe):
    field = Counting()
    res = flowforge.sample(
        field,
        torch.randn(5, 2),
        path="cond_ot",
        prediction="velocity",
        solver=solver,
        nfe=nfe,
        return_trajectory=True,
    )
    assert field.calls == nfe == res.nfe


@pytest.mark.parametrize(
    ("solver", "nfe", "valid"),
    [("rk4", 10, "4, 8, 12"), ("heun", 4, "1, 3, 5"), ("midpoint", 3, "2, 4, 6"), ("euler", 0, "")],
)
def test_impossible_nfe_names_valid_values(solver, nfe, valid):
    with pytest.raises(InvalidArgumentError, match=valid or "positive integer"):
        flowforge.sample(
            Counting(),
            torch.randn(2, 2),
            path="cond_ot",
            prediction="velocity",
            solver=solver,
            nfe=nfe,
        )


def test_t_span_is_honoured_exactly_per_sample():
    x0 = torch.randn(4, 2, dtype=torch.float64)
    t0 = torch.tensor([0.0, 0.1, 0.2, 0.3], dtype=torch.float64)
    t1 = torch.tensor([1.0, 0.9, 0.8, 0.95], dtype=torch.float64)
    res = flowforge.sample(
        Counting(),
        x0,
        path="cond_ot",
        prediction="velocity",
        solver="rk4",
        nfe=40,
        t_span=(t0, t1),
        time_grid="logsnr",
        return_trajectory=True,
    )
    assert torch.equal(res.times[0], t0) and torch.equal(res.times[-1], t1)
    assert res.trajectory.shape == (11, 4, 2) and torch.equal(res.trajectory[-1], res.x)
    # each sample equals a solve of that sample alone with scalar endpoints
    for i in range(4):
        alone = flowforge.sample(
            Counting(),
            x0[i : i + 1],
            path="cond_ot",
            prediction="velocity",
            solver="rk4",
            nfe=40,
            t_span=(float(t0[i]), float(t1[i])),
            time_grid="logsnr",
        )
        torch.testing.assert_close(alone[0], res.x[i], rtol=1e-12, atol=1e-12)


def test_backward_integration_inverts_forward():
    x0 = torch.randn(6, 2, dtype=torch.float64)
    kw = dict(path="cond_ot", prediction="velocity", solver="rk4", nfe=400)
    x1 = flowforge.sample(Counting(), x0, **kw)
    back = flowforge.sample(Counting(), x1, t_span=(1.0, 0.0), **kw)
    torch.testing.assert_close(back, x0, rtol=1e-7, atol=1e-7)


def test_nan_is_reported_with_its_step():
    def bad(x, t):
        return torch.where(t[:, None] > 0.5, torch.nan, 1.0) * torch.ones_like(x)

    with pytest.raises(NumericalError, match=r"step 7 of 10 \(t=0.6 -> 0.7\)"):
        flowforge.sample(
            bad,
            torch.randn(3, 2),
            path="cond_ot",
            prediction="velocity",
            solver="euler",
            nfe=10,
            time_grid="uniform",
        )


def test_bad_inputs_get_clear_messages():
    kw = dict(path="cond_ot", prediction="velocity", solver="euler", nfe=2)
    with pytest.raises(InvalidArgumentError, match="same shape"):
        flowforge.sample(lambda x, t: x[:, :1], torch.randn(3, 2), **kw)
    with pytest.raises(InvalidArgumentError, match="x_init must be a tensor"):
        flowforge.sample(Counting(), [[0.0, 0.0]], **kw)
    with pytest.raises(InvalidArgumentError, match="one time per sample"):
        flowforge.sample(Counting(), torch.randn(3, 2), t_span=(torch.zeros(2), 1.0), **kw)
    with pytest.raises(SpecError, match=r"[Dd]id you mean 'rk4'"):
        flowforge.sample(Counting(), torch.randn(3, 2), **{**kw, "solver": "rk5"})
    with pytest.raises(InvalidArgumentError, match="prediction"):
        flowforge.sample(Counting(), torch.randn(3, 2), **{**kw, "prediction": "eps"})
    with pytest.raises(InvalidArgumentError, match="time_grid"):
        flowforge.sample(Counting(), torch.randn(3, 2), time_grid="cosine", **kw)


def test_guidance_hooks_run_in_order():
    class Shift(Guidance):
        def __init__(self, dv):
            self.dv = dv

        def on_prediction(self, pred, dynamics):
            return pred.with_value(pred.value + self.dv)

    x0 = torch.zeros(2, 2, dtype=torch.float64)
    kw = dict(path="cond_ot", prediction="velocity", solver="euler", nfe=4)
    zero = lambda x, t: torch.zeros_like(x)
    out = flowforge.sample(zero, x0, guidance=[Shift(1.0), Shift(2.0)], **kw)
    torch.testing.assert_close(out, torch.full_like(x0, 3.0))


def test_explicit_grid_and_generator_are_accepted():
    grid = torch.tensor([0.0, 0.5, 0.9, 1.0])
    res = flowforge.sample(
        Counting(),
        torch.randn(2, 2),
        path="cond_ot",
        prediction="velocity",
        solver="euler",
        nfe=3,
        time_grid=grid,
        generator=torch.Generator(),
        return_trajectory=True,
    )
    assert torch.equal(res.times[:, 0], grid)
    with pytest.raises(InvalidArgumentError, match="explicit time_grid"):
        flowforge.sample(
            Counting(),
            torch.randn(2, 2),
            path="cond_ot",
            prediction="velocity",
            solver="euler",
            nfe=5,
            time_grid=grid,
        )
