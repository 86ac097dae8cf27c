"""`flowforge.sample`: one driver runs any solver on any model, path and prediction kind."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from flowforge import registry
from flowforge.errors import InvalidArgumentError, NumericalError
from flowforge.field import Dynamics
from flowforge.grids import make_grid
from flowforge.guidance.base import Guidance
from flowforge.paths.base import AffinePath, check_prediction
from flowforge.solvers.base import Adaptive, Solver, StepInfo
from flowforge.tensors import as_time


@dataclass(frozen=True)
class SampleResult:
    """Result of `sample(..., return_trajectory=True)`.

    `x (B, ...)` at t1; `trajectory (S+1, B, ...)` the states on the grid; `times (S+1, B)`.
    """

    x: Tensor
    trajectory: Tensor
    times: Tensor
    nfe: int


def _guidance_list(guidance: Any) -> list[Guidance]:
    if guidance is None:
        return []
    items = (
        guidance if isinstance(guidance, Sequence) and not isinstance(guidance, str) else [guidance]
    )
    out = [registry.resolve("guidance", g) for g in items]
    for g in out:
        if not isinstance(g, Guidance):
            raise InvalidArgumentError(
                f"guidance must be a registered name or a Guidance, got {g!r}"
            )
    return out


def _resolve(path: Any, solver: Any) -> tuple[AffinePath, Solver]:
    path = registry.resolve("path", path)
    solver = registry.resolve("solver", solver)
    if not isinstance(path, AffinePath):
        raise InvalidArgumentError(
            f"path {path!r} is not an affine Gaussian path; these solvers need alpha/sigma"
        )
    if not isinstance(solver, Solver):
        raise InvalidArgumentError(f"solver must be a registered name or a Solver, got {solver!r}")
    return path, solver


def sample(
    field: Callable[..., Tensor],
    x_init: Tensor,
    *,
    path: str | AffinePath,
    prediction: str,
    solver: str | Solver,
    nfe: int | None,
    t_span: tuple[float | Tensor, float | Tensor] | None = None,
    time_grid: str | Tensor = "auto",
    guidance: Any = None,
    generator: torch.Generator | None = None,
    return_trajectory: bool = False,
) -> Tensor | SampleResult:
    """Integrate from `x_init` at `t_span[0]` to `t_span[1]` with exactly `nfe` model calls.

    For an adaptive solver (`dopri5`) `nfe` is a budget instead (None: the solver's cap) and
    `SampleResult.nfe` reports the calls made.

    `field(x_t, t)` returns a `prediction` (velocity, data, noise or score) for `path`;
    `x_init (B, ...)` is the source sample (noise for t0=0); `t_span` endpoints are floats or
    per-sample `(B,)` tensors (default: the path's `t_span`). Returns the state at t1, or a
    `SampleResult` with the trajectory when `return_trajectory=True`.

    >>> x = flowforge.sample(model, torch.randn(64, 2), path="cond_ot",
    ...                      prediction="velocity", solver="rk4", nfe=40)
    """
    if not isinstance(x_init, Tensor):
        raise InvalidArgumentError(f"x_init must be a tensor (B, ...), got {type(x_init).__name__}")
    if x_init.ndim < 1 or x_init.shape[0] == 0:
        raise InvalidArgumentError(
            f"x_init must have a batch dimension, got shape {tuple(x_init.shape)}"
        )
    path, solver = _resolve(path, solver)
    check_prediction(prediction)
    hooks = _guidance_list(guidance)
    batch = x_init.shape[0]
    t0, t1 = path.t_span if t_span is None else t_span
    t0, t1 = as_time(t0, batch, x_init), as_time(t1, batch, x_init)
    if isinstance(solver, Adaptive):
        return _adaptive(
            field,
            x_init,
            path,
            prediction,
            solver,
            nfe,
            t0,
            t1,
            hooks,
            generator,
            return_trajectory,
        )
    if nfe is None:
        raise InvalidArgumentError(
            f"solver {solver.name!r} takes a fixed number of steps: give nfe (only adaptive "
            "solvers such as dopri5 accept nfe=None)"
        )
    steps = solver.steps_for_nfe(nfe)
    grid = make_grid(time_grid, path, t0, t1, steps, solver.default_grid)
    f = Dynamics(field, path, prediction, hooks)
    grad = torch.enable_grad() if any(g.requires_grad for g in hooks) else torch.no_grad()
    with grad:
        x, traj, bad = _loop(f, solver, x_init, grid, steps, generator, hooks, return_trajectory)
    if f.nfe != nfe:
        raise InvalidArgumentError(
            f"solver {solver.name!r} made {f.nfe} model calls where nfe={nfe} was promised; "
            "this is a bug in the solver"
        )
    _check_finite(bad, grid, solver, prediction)
    if return_trajectory:
        return SampleResult(x, torch.stack(traj), grid, f.nfe)
    return x


def _adaptive(field, x_init, path, prediction, solver, nfe, t0, t1, hooks, generator, keep):
    """Run an adaptive solver's own loop; only prediction hooks apply inside it."""
    for g in hooks:
        if type(g).after_step is not Guidance.after_step or (
            type(g).on_population is not Guidance.on_population
        ):
            raise InvalidArgumentError(
                f"guidance {type(g).__name__} acts after steps, which adaptive solver "
                f"{solver.name!r} does not have; use a fixed-step solver"
            )
    f = Dynamics(field, path, prediction, hooks)
    grad = torch.enable_grad() if any(g.requires_grad for g in hooks) else torch.no_grad()
    with grad:
        out = solver.solve(f, x_init, t0, t1, nfe, generator)
    if not bool(torch.isfinite(out.x).all()):
        raise NumericalError(
            f"adaptive solver {solver.name!r} produced NaN or Inf (check the model's output, or "
            "narrow t_span away from end points where the prediction has no finite velocity)"
        )
    if keep:
        return SampleResult(out.x, torch.stack(out.trajectory), torch.stack(out.times), f.nfe)
    return out.x


def _loop(f, solver, x, grid, steps, generator, hooks, keep):
    state = solver.init(f, x, grid, generator)
    traj = [x] if keep else []
    bad = torch.full((), -1, dtype=torch.long, device=x.device)
    for i in range(steps):
        x, state = solver.step(f, x, grid[i], grid[i + 1], state, StepInfo(i, steps, generator))
        for g in hooks:
            x = g.after_step(x, grid[i + 1], f)
        # Record the first step that went non-finite without a host sync.
        bad = torch.where((bad < 0) & ~torch.isfinite(x).all(), torch.full_like(bad, i), bad)
        if keep:
            traj.append(x)
    return x, traj, bad


def _check_finite(bad: Tensor, grid: Tensor, solver: Solver, prediction: str) -> None:
    step = int(bad)
    if step < 0:
        return
    t_a, t_b = float(grid[step, 0]), float(grid[step + 1, 0])
    raise NumericalError(
        f"the solve produced NaN or Inf in step {step + 1} of {grid.shape[0] - 1} "
        f"(t={t_a:.4g} -> {t_b:.4g}) with solver "
        f"{solver.name!r}. Usual causes: a model that outputs NaN; a {prediction!r} prediction "
        "evaluated at an end point where it has no finite velocity (noise/score where alpha(t)=0, "
        "data where sigma(t)=0: narrow t_span, e.g. (1e-3, 1 - 1e-3), or predict velocity); or too "
        "few steps for a stiff field (raise nfe)."
    )
