"""`flowforge.invert`: carry data back to noise along the probability-flow ODE.

Any ODE solver inverts approximately: it integrates the same ODE from the data end to the noise
end, so a round trip noise -> data -> noise is off by the two solves' discretisation errors.
`bdia` (Zhang et al. 2023, see `flowforge.solvers.bdia`) inverts exactly: its update is an
algebraic recursion in the last two states, so the states of a BDIA generation are recovered
from the last two by solving the recursion backwards, up to float rounding.

Exactness needs the state before the last one, so pass the `SampleResult` of the generation
(`return_trajectory=True`): its trajectory holds it and its `times` are the grid. Given only a
data tensor, BDIA inversion starts with one DDIM step from the data (evaluating the model at the
data end), which makes the result approximate, as for any other solver.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from flowforge import registry
from flowforge.driver import SampleResult, sample
from flowforge.errors import InvalidArgumentError, NumericalError
from flowforge.field import Dynamics
from flowforge.grids import make_grid
from flowforge.paths.base import AffinePath
from flowforge.solvers.base import ODE, Solver
from flowforge.solvers.bdia import BDIA
from flowforge.tensors import as_time


def invert(
    field: Callable[..., Tensor],
    x_data: Tensor | SampleResult,
    *,
    path: str | AffinePath,
    prediction: str,
    solver: str | Solver,
    nfe: int | None,
    t_span: tuple[float | Tensor, float | Tensor] | None = None,
    time_grid: str | Tensor = "auto",
    return_trajectory: bool = False,
) -> Tensor | SampleResult:
    """The noise that `field`'s probability-flow ODE carries to `x_data`: data -> noise.

    `x_data (B, ...)` is the data, or the `SampleResult` of a generation (its `x`; with `bdia`
    also its last two states and its grid, for an exact inverse). `t_span = (t_data, t_noise)`
    runs backwards; default: the path's `t_span` reversed (or the result's times). `solver` is
    any ODE solver; `nfe` counts model calls as in `flowforge.sample` (for a BDIA result: None
    or the result's steps minus one); `time_grid` as there. Returns the state at `t_noise`, or
    with `return_trajectory=True` a `SampleResult` ordered data -> noise.

    >>> out = flowforge.sample(model, noise, path="cond_ot", prediction="velocity",
    ...                        solver="bdia", nfe=20, return_trajectory=True)
    >>> again = flowforge.invert(model, out, path="cond_ot", prediction="velocity",
    ...                          solver="bdia", nfe=None)   # == noise up to rounding
    """
    solver = registry.resolve("solver", solver)
    if not isinstance(solver, ODE):
        raise InvalidArgumentError(
            f"invert needs a deterministic ODE solver (such as rk4, heun or bdia), got {solver!r}"
        )
    result = x_data if isinstance(x_data, SampleResult) else None
    x = result.x if result is not None else x_data
    if not isinstance(x, Tensor) or x.ndim < 1:
        raise InvalidArgumentError(
            f"x_data must be a (B, ...) tensor or a SampleResult, got {type(x_data).__name__}"
        )
    if isinstance(solver, BDIA):
        return _invert_bdia(
            field, x, result, path, prediction, solver, nfe, t_span, time_grid, return_trajectory
        )
    if t_span is None and result is not None:
        t_span = (result.times[-1], result.times[0])
    if t_span is None:
        t_span = registry.resolve("path", path).t_span[::-1]
    return sample(
        field,
        x,
        path=path,
        prediction=prediction,
        solver=solver,
        nfe=nfe,
        t_span=t_span,
        time_grid=time_grid,
        return_trajectory=return_trajectory,
    )


def _invert_bdia(field, x, result, path, prediction, solver, nfe, t_span, time_grid, keep):
    """BDIA's exact inverse from a result's last two states, else after one DDIM step."""
    path = registry.resolve("path", path)
    if not isinstance(path, AffinePath):
        raise InvalidArgumentError(f"bdia needs an affine Gaussian path, got {path!r}")
    calls = 0
    if result is not None:
        grid, before = _result_grid(result, nfe, t_span), result.trajectory[-2]
    else:
        grid = _forward_grid(path, x, solver, nfe, t_span, time_grid)
        # BDIA's first step is DDIM; taken from the data end it estimates x_{S-1}.
        kw = dict(path=path, prediction=prediction, solver=solver, nfe=1)
        before, calls = sample(field, x, t_span=(grid[-1], grid[-2]), **kw), 1
    f = Dynamics(field, path, prediction)
    with torch.no_grad():
        states = solver.invert_pair(f, x, before, grid)
    out = states[-1]
    if not bool(torch.isfinite(out).all()):
        raise NumericalError(
            f"bdia inversion produced NaN or Inf. A {prediction!r} prediction may have no finite "
            "velocity at an end point (data: where sigma=0, noise/score: where alpha=0): narrow "
            "t_span, e.g. (1 - 1e-3, 1e-3), or pass the generation's SampleResult"
        )
    if keep:
        return SampleResult(out, torch.stack(states), grid.flip(0), f.nfe + calls)
    return out


def _result_grid(result: SampleResult, nfe: int | None, t_span) -> Tensor:
    """The grid of a BDIA generation, checking that `nfe` and `t_span` agree with it."""
    steps = result.times.shape[0] - 1
    if result.trajectory.shape[0] != steps + 1 or steps < 1:
        raise InvalidArgumentError(
            "a SampleResult to invert must hold the whole trajectory of a fixed-step bdia solve "
            f"(times {tuple(result.times.shape)}, trajectory {tuple(result.trajectory.shape)})"
        )
    if nfe is not None and nfe != steps - 1:
        raise InvalidArgumentError(
            f"the exact inverse of this {steps}-step bdia result makes nfe={steps - 1} model "
            f"calls; pass nfe={steps - 1} or nfe=None (got {nfe})"
        )
    if t_span is not None:
        raise InvalidArgumentError(
            "t_span is set by the SampleResult's times for an exact bdia inversion; leave it None"
        )
    return result.times


def _forward_grid(path, x, solver, nfe, t_span, time_grid) -> Tensor:
    """The grid a BDIA generation with `nfe` calls would use, from noise to data: `(S+1, B)`."""
    t_data, t_noise = path.t_span[::-1] if t_span is None else t_span
    t_data, t_noise = as_time(t_data, x.shape[0], x), as_time(t_noise, x.shape[0], x)
    if nfe is None:
        raise InvalidArgumentError("bdia takes a fixed number of steps: give nfe (= steps)")
    steps = solver.steps_for_nfe(nfe)
    return make_grid(time_grid, path, t_noise, t_data, steps, solver.default_grid)
