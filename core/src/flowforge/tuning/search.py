"""Schedule tuning: optimise a solver's time grid for one model and one nfe on pilot samples.

Procedure (in the spirit of "A unified sampling framework for solver searching", Liu et al.
2024, and of DPM-Solver-v3's model statistics, Zheng et al. 2023: spend a few field evaluations
on the actual model to fit the sampler to it):

1. Reference: solve the probability-flow ODE from the pilot noises `x_pilot (P, ...)` with a
   fine-step solver (`reference_solver`, `reference_nfe` evaluations): `x_ref`.
2. Parametrise the grid by unconstrained logits `theta (steps,)` of the step fractions:
   `t_i = t0 + (t1 - t0) * sum_{j < i} softmax(theta)_j`, which keeps every grid increasing with
   exact end points. Start from `init_grid` (default: `auto`, the grid the solver samples
   on by default on this path).
3. Minimise the benchmark error `E = mean_p ||x_p(theta) - x_ref_p|| / sqrt(d)` by Adam,
   differentiating through the solver steps (the field must be differentiable in `x` and `t`;
   model weights are frozen during tuning). Each iteration costs exactly `nfe` batched field
   evaluations plus one backward pass through them; a time whose autograd derivative is not
   finite (next to an end point of infinite log-SNR, for exponential integrators) gets a forward
   finite difference (`nfe` more evaluations each). The best grid seen is kept.
4. With several candidate solvers the budget is shared and the best (solver, grid) wins: the
   "solver search" part, at the granularity of whole solvers.

Budget: `budget` counts every batched field call, the reference included; each candidate solver
gets `(budget - reference_nfe) // len(solvers)` evaluations and iterates while one more pass
fits. A budget too small for one pass raises.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, is_dataclass

import torch
from torch import Tensor, nn

from flowforge import registry
from flowforge.driver import run_steps, sample
from flowforge.errors import InvalidArgumentError
from flowforge.field import Dynamics
from flowforge.grids import make_grid
from flowforge.paths.base import AffinePath, check_prediction
from flowforge.solvers.base import ODE, SDE, Adaptive, Solver
from flowforge.tensors import as_time
from flowforge.tuning.schedule import TunedSchedule


def rms_error(x: Tensor, ref: Tensor) -> Tensor:
    """Mean over samples of `||x - ref|| / sqrt(d)` (the benchmark's error); `(B, ...)` -> `()`."""
    diff = (x - ref).reshape(x.shape[0], -1)
    return (diff.square().mean(dim=1) + 1e-30).sqrt().mean()


@contextlib.contextmanager
def _frozen(field: Callable) -> Iterator[None]:
    """Model weights need no gradient while the grid is tuned; restored afterwards."""
    params = (
        [p for p in field.parameters() if p.requires_grad] if isinstance(field, nn.Module) else []
    )
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _fixed_step_ode(name: str | Solver) -> Solver:
    solver = registry.resolve("solver", name)
    if not isinstance(solver, Solver) or not isinstance(solver, ODE):
        raise InvalidArgumentError(f"schedule tuning needs an ODE solver, got {name!r}")
    if isinstance(solver, Adaptive | SDE):
        raise InvalidArgumentError(
            f"solver {solver.name!r} has no fixed grid to tune (adaptive or stochastic); "
            "tune a fixed-step ODE solver such as heun, dpm_solver_pp or unipc"
        )
    return solver


def _name(component: object) -> str:
    """A registered name as given, else the object's class and parameters (for the record)."""
    if isinstance(component, str):
        return component
    args = asdict(component) if is_dataclass(component) else {}
    return f"{type(component).__name__}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


def _solve(f: Dynamics, solver: Solver, x: Tensor, times: Tensor) -> Tensor:
    """Run `solver` over the 1-D grid `times (S+1,)` for the whole batch, keeping gradients."""
    grid = times[:, None].expand(-1, x.shape[0])
    out, _, _ = run_steps(f, solver, x, grid, solver.init(f, x, grid), None, False)
    return out


def _grid(theta: Tensor, t0: Tensor, t1: Tensor) -> Tensor:
    frac = torch.cumsum(torch.softmax(theta, dim=0), dim=0)
    times = t0 + (t1 - t0) * torch.cat([frac.new_zeros(1), frac])
    return torch.cat([times[:-1], t1.reshape(1)])


class _Adam:
    """Adam (Kingma & Ba 2015) on one tensor, by hand: `torch.optim` imports torch._dynamo on
    first use, which costs seconds of start-up for a 5-line update."""

    def __init__(self, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.lr, self.betas, self.eps = lr, betas, eps
        self.m = self.v = None
        self.k = 0

    def step(self, theta: Tensor, grad: Tensor) -> None:
        b1, b2 = self.betas
        self.k += 1
        self.m = grad * (1 - b1) if self.m is None else self.m * b1 + grad * (1 - b1)
        self.v = grad**2 * (1 - b2) if self.v is None else self.v * b2 + grad**2 * (1 - b2)
        m_hat, v_hat = self.m / (1 - b1**self.k), self.v / (1 - b2**self.k)
        theta -= self.lr * m_hat / (v_hat.sqrt() + self.eps)


def _time_gradient(f, solver, x, ref, times, nfe, spare) -> tuple[Tensor, Tensor]:
    """(error, d error / d times) at the grid `times`; end points get 0.

    A time next to an end point with infinite log-SNR (pure noise, clean data) can have no
    autograd derivative (an exponential integrator's step size there is infinite); such entries
    get a forward finite difference instead (one solve each, paid from `spare` evaluations,
    else 0: that time then stays where it is).
    """
    leaf = times.detach().requires_grad_(True)
    with torch.enable_grad():
        err = rms_error(_solve(f, solver, x, leaf), ref)
        (grad,) = torch.autograd.grad(err, leaf)
    grad[0] = grad[-1] = 0.0
    for i in torch.nonzero(~torch.isfinite(grad)).flatten().tolist():
        grad[i] = 0.0
        if spare < nfe:
            continue
        spare -= nfe
        gaps = torch.diff(leaf.detach())
        h = 1e-4 * float(torch.minimum(gaps[i - 1], gaps[i]))
        moved = leaf.detach().clone()
        moved[i] += h
        with torch.no_grad():
            slope = (float(rms_error(_solve(f, solver, x, moved), ref)) - float(err)) / h
        if math.isfinite(slope):
            grad[i] = slope
    return err.detach(), grad


def _tune_one(f, solver, x, ref, init, t0, t1, nfe, evaluations, lr) -> tuple[Tensor, float, float]:
    """(best grid, error of `init`, best error) from Adam on the logits within `evaluations`.

    Each pass costs `nfe` evaluations (plus finite differences where autograd has none).
    """
    theta = torch.log(torch.diff(init) / (t1 - t0)).detach()
    opt = _Adam(lr)
    best_grid, before, best = init, None, math.inf
    start = f.nfe
    while evaluations - (f.nfe - start) >= nfe:
        logits = theta.clone().requires_grad_(True)
        with torch.enable_grad():
            times = _grid(logits, t0, t1)
        spare = evaluations - (f.nfe - start) - nfe
        err, grad_t = _time_gradient(f, solver, x, ref, times, nfe, spare)
        value = float(err)
        if before is None:
            before = value
        if not math.isfinite(value):
            # A degenerate grid: go back to the best one and take smaller steps.
            theta = torch.log(torch.diff(best_grid) / (t1 - t0))
            opt.lr *= 0.5
            continue
        if value < best:
            best, best_grid = value, times.detach()
        (grad,) = torch.autograd.grad(times, logits, grad_outputs=grad_t)
        opt.step(theta, grad)
    return best_grid, math.inf if before is None else before, best


def tune_schedule(
    field: Callable[..., Tensor],
    x_pilot: Tensor,
    *,
    path: str | AffinePath,
    prediction: str,
    solver: str | Solver | Sequence[str | Solver],
    nfe: int,
    budget: int = 2000,
    t_span: tuple[float, float] | None = None,
    init_grid: str | Tensor = "auto",
    reference_solver: str | Solver = "rk4",
    reference_nfe: int = 400,
    reference_grid: str = "uniform",
    lr: float = 0.05,
) -> TunedSchedule:
    """Tune the time grid of `solver` (or pick the best of several) for `field` at `nfe`.

    `field(x_t, t)` makes a `prediction` for `path` and must be differentiable in `x_t` and `t`
    (any nn.Module or analytic field; its weights are frozen while tuning). `x_pilot (P, ...)`
    are source samples at `t_span[0]` (e.g. `prior_sample(path, (64, d), 0.0)`); 32-256 pilots
    are typical. `budget` (>= `reference_nfe + nfe`) caps the batched field evaluations, the
    reference included. `lr` is Adam's step on the grid logits (0.01-0.2).
    Returns the best grid found and its pilot errors before and after.

    >>> tuned = tune_schedule(model, torch.randn(64, 2), path="cond_ot", prediction="velocity",
    ...                       solver=["heun", "dpm_solver_pp"], nfe=10, budget=3000)
    >>> tuned.save("runs/tuned/nfe10.json")
    """
    check_prediction(prediction)
    if not isinstance(x_pilot, Tensor) or x_pilot.ndim < 1 or x_pilot.shape[0] == 0:
        raise InvalidArgumentError("x_pilot must be a non-empty (P, ...) tensor of source noises")
    resolved = registry.resolve("path", path)
    if not isinstance(resolved, AffinePath):
        raise InvalidArgumentError(f"schedule tuning needs an affine Gaussian path, got {path!r}")
    candidates = [solver] if isinstance(solver, str | Solver) else list(solver)
    solvers = [_fixed_step_ode(s) for s in candidates]
    labels = [c if isinstance(c, str) else s.name for c, s in zip(candidates, solvers, strict=True)]
    if not solvers:
        raise InvalidArgumentError("give at least one solver to tune")
    steps = [s.steps_for_nfe(nfe) for s in solvers]
    span = resolved.t_span if t_span is None else t_span
    t0, t1 = (as_time(t, 1, x_pilot)[0] for t in span)
    per_solver = (budget - reference_nfe) // len(solvers)
    if per_solver < nfe:
        need = reference_nfe + nfe * len(solvers)
        raise InvalidArgumentError(
            f"budget={budget} field evaluations cannot pay for the reference ({reference_nfe}) "
            f"and one tuning pass ({nfe} per solver, {len(solvers)} solvers); raise budget to at "
            f"least {need}, ideally 50-200 passes ({reference_nfe + 100 * nfe * len(solvers)})"
        )
    x = x_pilot.detach()
    ref = sample(
        field, x, path=resolved, prediction=prediction, solver=reference_solver,
        nfe=reference_nfe, t_span=(t0, t1), time_grid=reference_grid,
    )  # fmt: skip
    f = Dynamics(field, resolved, prediction)
    results = {}
    with _frozen(field):
        for label, s, n in zip(labels, solvers, steps, strict=True):
            init = make_grid(init_grid, resolved, t0[None], t1[None], n, s.default_grid)[:, 0]
            results[label] = _tune_one(f, s, x, ref, init, t0, t1, nfe, per_solver, lr)
    best = min(results, key=lambda label: results[label][2])
    grid, before, after = results[best]
    return TunedSchedule(
        path=_name(path),
        prediction=prediction,
        solver=best,
        nfe=nfe,
        grid=tuple(float(t) for t in grid),
        error_before=before,
        error_after=after,
        budget=budget,
        evaluations=reference_nfe + f.nfe,
        pilot_samples=x.shape[0],
        reference={"solver": _name(reference_solver), "nfe": reference_nfe, "grid": reference_grid},
        candidates={label: r[2] for label, r in results.items()},
    )
