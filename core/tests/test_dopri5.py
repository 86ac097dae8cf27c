"""dopri5: meets its tolerance against DOP853, controls each sample alone, reports its NFE."""

from __future__ import annotations

import itertools

import pytest
import torch

import flowforge
from flowforge import registry
from flowforge.errors import InvalidArgumentError, NumericalError, SpecError
from flowforge.solvers.dopri5 import Dopri5
from flowforge.testing.convergence import MIXTURE, start_and_reference
from flowforge.testing.fakes import CountingField

F64 = torch.float64


def _solve(path_name, x, solver, nfe=None, field=None, prediction="velocity", **kw):
    path = registry.create("path", path_name)
    field = field or MIXTURE.field(path, prediction)
    return flowforge.sample(
        field, x, path=path, prediction=prediction, solver=solver, nfe=nfe, **kw
    )


@pytest.mark.parametrize("controller", ["pi", "standard"])
@pytest.mark.parametrize("path_name", ["cond_ot", "vp_cosine", "edm"])
def test_error_scales_with_the_tolerance(path_name, controller):
    """Against scipy's DOP853 at 1e-13, over the whole t_span: global error within 100 * tol.

    Measured max errors over 16 starts (pi): 6e-4 to 7e-4 at 1e-4, 2.6e-6 to 8.4e-6 at 1e-6,
    1.9e-8 to 5e-8 at 1e-8; the standard controller is up to 7x less accurate at 1e-4.
    """
    x0, ref = start_and_reference(path_name)
    errors = {}
    for tol in (1e-4, 1e-6, 1e-8):
        out = _solve(path_name, x0, Dopri5(rtol=tol, atol=tol, controller=controller))
        errors[tol] = float((out - ref).abs().max())
        assert errors[tol] <= 100 * tol, f"tol {tol:g}: error {errors[tol]:.3g}"
    assert errors[1e-6] <= 1e-5
    assert errors[1e-8] < 1e-3 * errors[1e-4], errors


def test_a_batch_solves_like_its_samples_alone():
    """Per-sample control: each sample's steps depend only on itself, so batch == alone."""
    x0, _ = start_and_reference("cond_ot")
    x = x0[:5]
    t0 = torch.tensor([0.0, 0.0, 0.3, 0.5, 0.2], dtype=F64)
    t1 = torch.tensor([1.0, 0.4, 1.0, 0.5, 0.9], dtype=F64)  # sample 3: zero length
    solver = Dopri5(rtol=1e-6, atol=1e-6)
    batch = _solve("cond_ot", x, solver, t_span=(t0, t1))
    for i in range(5):
        one = _solve("cond_ot", x[i : i + 1], solver, t_span=(t0[i : i + 1], t1[i : i + 1]))
        torch.testing.assert_close(batch[i : i + 1], one, rtol=1e-12, atol=1e-12)
    assert torch.equal(batch[3], x[3])


def test_each_call_batches_only_the_samples_still_running():
    seen = []
    field = MIXTURE.field(registry.create("path", "cond_ot"))

    def recording(x_t, t):
        seen.append(x_t.shape[0])
        return field(x_t, t)

    x0, _ = start_and_reference("cond_ot")
    t1 = torch.tensor([0.1] * 4 + [1.0] * 4, dtype=F64)
    out = _solve("cond_ot", x0[:8], Dopri5(), field=recording, t_span=(0.0, t1))
    assert seen[0] == 8 and min(seen) == 4
    assert all(a >= b for a, b in itertools.pairwise(seen)), seen
    assert torch.isfinite(out).all()


def test_reports_the_nfe_it_used():
    """FSAL: one call at t0, one for the first step size, then six per attempted step."""
    x0, _ = start_and_reference("vp_cosine")
    field = CountingField(MIXTURE.field(registry.create("path", "vp_cosine")))
    out = _solve("vp_cosine", x0, Dopri5(rtol=1e-6, atol=1e-6), field=field, return_trajectory=True)
    assert out.nfe == field.calls
    assert (out.nfe - 2) % 6 == 0 and out.nfe > 8
    assert torch.equal(out.times[0], torch.zeros(16, dtype=F64))
    assert torch.equal(out.times[-1], torch.ones(16, dtype=F64))
    assert torch.equal(out.trajectory[-1], out.x)
    assert bool((out.times.diff(dim=0) >= 0).all()), "times never go back"


def test_backwards_solve_returns_to_the_start():
    x0, _ = start_and_reference("vp_cosine")
    solver = Dopri5(rtol=1e-9, atol=1e-9)
    x1 = _solve("vp_cosine", x0, solver)
    back = _solve("vp_cosine", x1, solver, t_span=(1.0, 0.0))
    torch.testing.assert_close(back, x0, rtol=0, atol=1e-6)


@pytest.mark.parametrize("prediction", ["data", "noise", "score"])
def test_prediction_kinds_agree(prediction):
    """On edm (alpha = 1, sigma > 0 everywhere) every kind has a finite velocity at both ends."""
    x0, ref = start_and_reference("edm")
    solver = Dopri5(rtol=1e-8, atol=1e-8)
    out = _solve("edm", x0, solver, prediction=prediction)
    velocity = _solve("edm", x0, solver)
    torch.testing.assert_close(out, velocity, rtol=0, atol=1e-6)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)


def test_running_out_of_budget_says_what_to_change():
    x0, _ = start_and_reference("edm")
    field = CountingField(MIXTURE.field(registry.create("path", "edm")))
    with pytest.raises(NumericalError, match="raise nfe") as err:
        _solve("edm", x0, Dopri5(rtol=1e-8, atol=1e-8), nfe=50, field=field)
    assert field.calls <= 50 and "nfe=50" in str(err.value)
    with pytest.raises(NumericalError, match="max_nfe=20"):
        _solve("edm", x0, Dopri5(rtol=1e-8, atol=1e-8, max_nfe=20))


def test_a_nan_field_fails_with_a_message():
    def broken(x_t, t):
        return torch.where((t > 0.5)[:, None], torch.nan, -x_t)

    with pytest.raises(NumericalError, match="non-finite"):
        _solve("cond_ot", torch.ones(2, 2, dtype=F64), Dopri5(), field=broken)


@pytest.mark.parametrize("nfe", [0, -3, 2.5, True])
def test_invalid_budget(nfe):
    with pytest.raises(InvalidArgumentError, match="budget"):
        _solve("cond_ot", torch.zeros(2, 2), Dopri5(), nfe=nfe)


def test_parameters_are_validated_by_the_registry():
    assert registry.create("solver", "dopri5", rtol=1e-7).rtol == 1e-7
    for bad in ({"rtol": 0.0}, {"atol": -1.0}, {"controller": "pid"}, {"max_nfe": 3}):
        with pytest.raises(SpecError):
            registry.create("solver", "dopri5", **bad)
    with pytest.raises(InvalidArgumentError, match="adaptive"):
        Dopri5().steps_for_nfe(10)
