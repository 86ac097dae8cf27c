"""`flowforge.sample`: one driver runs any solver on any model, path and prediction kind.

A fixed-step solve has two regions. Before the loop, anything may read values on the host:
argument checks, the time grid, `Solver.init`. The per-step region is one function,
`run_steps`: nothing in it (solver steps, the field, guidance hooks, the NaN/Inf bookkeeping)
reads a device value on the host, so the steps run back to back on a GPU and the whole loop can
be captured in one CUDA graph (`cuda_graph=True`, `flowforge.graph`). The single host read of
a solve, the NaN/Inf check, comes after the loop. `core/tests/test_host_sync.py` holds every
registered fixed-step solver to this.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from flowforge import registry
from flowforge.errors import InvalidArgumentError, NumericalError
from flowforge.field import Dynamics
from flowforge.graph import CACHE, CapturedCall, flatten, identity
from flowforge.grids import make_grid
from flowforge.guidance.base import Guidance
from flowforge.paths.base import AffinePath, check_prediction
from flowforge.solvers.base import Adaptive, Multistep, Solver, StepInfo
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


def guidance_list(
    guidance: Any, kind: type[Guidance] = Guidance, refuse: str | None = None
) -> list[Guidance]:
    """The sampler's `guidance` (None, a name, an instance, or a list of them; None entries are
    skipped) resolved through the registry; each must be a `kind` (else `refuse`, with `{name}`
    the guidance's type, is the error) with nothing it `needs` missing."""
    if guidance is None:
        return []
    items = (
        guidance if isinstance(guidance, Sequence) and not isinstance(guidance, str) else [guidance]
    )
    out = [registry.resolve("guidance", g) for g in items if g is not None]
    for g in out:
        if not isinstance(g, kind):
            raise InvalidArgumentError(
                f"guidance must be a registered name or a Guidance, got {g!r}"
                if refuse is None
                else refuse.format(name=type(g).__name__)
            )
        if g.needs:
            raise InvalidArgumentError(
                f"guidance {type(g).__name__} is missing {', '.join(g.needs)}: give "
                f"{' and '.join(g.needs)} when building it (see its docstring)"
            )
    return out


def _population_hooks(hooks: list[Guidance]) -> list[Guidance]:
    """The hooks that act on the particle population (SMC and the like)."""
    return [g for g in hooks if type(g).on_population is not Guidance.on_population]


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


class NetworkBoundary:
    """The field as a mixed-precision solve sees it: casts at the network's inputs and output.

    The solver state, grid and arithmetic stay in `state_dtype` (e.g. float32 or float64); the
    network gets `x_t` in `dtype` (e.g. bfloat16) and `t` in at least float32 (bf16 cannot tell
    t = 0.999 from 1), and its prediction is cast back to `state_dtype` before any conversion.
    """

    def __init__(self, field: Callable[..., Tensor], dtype: torch.dtype, state_dtype: torch.dtype):
        self.field = field
        self.dtype = dtype
        self.time_dtype = torch.promote_types(dtype, torch.float32)
        self.state_dtype = state_dtype

    def __call__(self, x_t: Tensor, t: Tensor, **cond: Any) -> Tensor:
        out = self.field(x_t.to(self.dtype), t.to(self.time_dtype), **cond)
        return out.to(self.state_dtype) if isinstance(out, Tensor) else out


def _state_dtype(solver_dtype: Any, x_init: Tensor) -> torch.dtype:
    if solver_dtype is None:
        return x_init.dtype
    if not isinstance(solver_dtype, torch.dtype) or not solver_dtype.is_floating_point:
        raise InvalidArgumentError(
            f"solver_dtype must be a floating-point torch.dtype such as torch.float32 or "
            f"torch.float64 (or None: x_init's dtype), got {solver_dtype!r}"
        )
    return solver_dtype


def _check_capturable(x: Tensor, solver: Solver, hooks: list[Guidance]) -> None:
    """Reject, before any work, what a CUDA graph of the sampling loop cannot hold."""
    if isinstance(solver, Adaptive):
        raise InvalidArgumentError(
            f"cuda_graph=True needs a fixed-step solver; {solver.name!r} chooses its step sizes "
            "on the host as it goes. Use a fixed-step solver (e.g. 'dpm_solver_pp', 'heun') or "
            "cuda_graph=False."
        )
    for g in hooks:
        if g.requires_grad:
            raise InvalidArgumentError(
                f"cuda_graph=True cannot capture guidance {type(g).__name__}: it needs autograd, "
                "which the captured loop does not record. Use cuda_graph=False with it."
            )
    if x.device.type != "cuda":
        raise InvalidArgumentError(
            f"cuda_graph=True needs x_init on a CUDA device, got {x.device}; move the model and "
            "x_init to the GPU, or pass cuda_graph=False."
        )


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
    cuda_graph: bool = False,
    solver_dtype: torch.dtype | None = None,
    cond: Mapping[str, Any] | None = None,
    check_finite: bool = True,
) -> Tensor | SampleResult:
    """Integrate from `x_init` at `t_span[0]` to `t_span[1]` with exactly `nfe` model calls.

    For an adaptive solver (`dopri5`) `nfe` is a budget instead (None: the solver's cap) and
    `SampleResult.nfe` reports the calls made.

    `field(x_t, t, **cond)` returns a `prediction` (velocity, data, noise or score) for `path`;
    `cond`: keyword arguments of a conditional model (class labels, embeddings), passed to every
    model call; guidance such as `cfg` calls the model without them as well;
    `x_init (B, ...)` is the source sample (noise for t0=0); `t_span` endpoints are floats or
    per-sample `(B,)` tensors (default: the path's `t_span`). Returns the state at t1, or a
    `SampleResult` with the trajectory when `return_trajectory=True`.

    `cuda_graph=True` (x_init on CUDA, fixed-step solvers): the first call captures the whole
    loop in one CUDA graph, later calls with the same field object, path, solver, guidance,
    nfe, shapes and dtypes only copy x_init and the grid into its static buffers and replay it
    (docs/gpu.md: what must be capturable, memory, `flowforge.graph.clear_cache()`).
    `solver_dtype` (e.g. torch.float32 or torch.float64): the dtype of the solver state, grid
    and result while the network keeps running in x_init's dtype (e.g. a bf16 model fed
    `noise.bfloat16()`); None: x_init's dtype throughout.
    `check_finite=False` (fixed-step solvers) skips the one host read after the loop that
    raises `NumericalError` on a NaN/Inf state, so the call never synchronises; the caller then
    owns that check (a training step whose targets come from a solve lets its NaN guard skip
    the step).

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
    hooks = guidance_list(guidance)
    dtype = _state_dtype(solver_dtype, x_init)
    net = field if dtype == x_init.dtype else NetworkBoundary(field, x_init.dtype, dtype)
    x = x_init.to(dtype)
    if cuda_graph:
        _check_capturable(x, solver, hooks)
    population = _population_hooks(hooks)
    if population and isinstance(solver, Multistep):
        raise InvalidArgumentError(
            f"guidance {type(population[0]).__name__} resamples the batch between "
            f"steps, but solver {solver.name!r} carries evaluations of earlier steps, which "
            "would not follow the particles. Use a one-step solver: reverse_sde (eta=0 gives "
            "ddim's numbers), euler_maruyama, euler, heun or rk4"
        )
    batch = x.shape[0]
    t0, t1 = path.t_span if t_span is None else t_span
    t0, t1 = as_time(t0, batch, x), as_time(t1, batch, x)
    if isinstance(solver, Adaptive):
        return _adaptive(
            net, x, path, prediction, solver, nfe, t0, t1, hooks, generator, return_trajectory, cond
        )
    if nfe is None:
        raise InvalidArgumentError(
            f"solver {solver.name!r} takes a fixed number of steps: give nfe (only adaptive "
            "solvers such as dopri5 accept nfe=None)"
        )
    steps = solver.steps_for_nfe(nfe)
    grid = make_grid(time_grid, path, t0, t1, steps, solver.default_grid)
    f = Dynamics(net, path, prediction, hooks, cond, solver)
    if cuda_graph:
        key = (identity(field), x_init.dtype, identity(path), identity(solver), prediction)
        key += (tuple(identity(g) for g in hooks), nfe, return_trajectory)
        x, traj, bad, calls = _replay(f, solver, x, grid, generator, return_trajectory, key)
    else:
        with _grad_mode(hooks):
            state = solver.init(f, x, grid, generator)
            x, traj, bad = run_steps(f, solver, x, grid, state, generator, return_trajectory)
        calls = f.nfe
    if calls != nfe:
        raise InvalidArgumentError(
            f"solver {solver.name!r} made {calls} model calls where nfe={nfe} was promised; "
            "this is a bug in the solver"
        )
    if check_finite:
        _check_finite(bad, grid, solver, prediction)
    if return_trajectory:
        return SampleResult(x, traj, grid, calls)
    return x


def _grad_mode(hooks: list[Guidance]):
    return torch.enable_grad() if any(g.requires_grad for g in hooks) else torch.no_grad()


def _adaptive(field, x_init, path, prediction, solver, nfe, t0, t1, hooks, generator, keep, cond):
    """Run an adaptive solver's own loop; only prediction hooks apply inside it."""
    for g in hooks:
        if type(g).after_step is not Guidance.after_step or (
            type(g).on_population is not Guidance.on_population
        ):
            raise InvalidArgumentError(
                f"guidance {type(g).__name__} acts after steps, which adaptive solver "
                f"{solver.name!r} does not have; use a fixed-step solver"
            )
    f = Dynamics(field, path, prediction, hooks, cond, solver)
    with _grad_mode(hooks):
        out = solver.solve(f, x_init, t0, t1, nfe, generator)
    if not bool(torch.isfinite(out.x).all()):
        raise NumericalError(
            f"adaptive solver {solver.name!r} produced NaN or Inf (check the model's output, or "
            "narrow t_span away from end points where the prediction has no finite velocity)"
        )
    if keep:
        return SampleResult(out.x, torch.stack(out.trajectory), torch.stack(out.times), f.nfe)
    return out.x


def run_steps(
    f: Dynamics,
    solver: Solver,
    x: Tensor,
    grid: Tensor,
    state: Any,
    generator: torch.Generator | None,
    keep: bool,
) -> tuple[Tensor, Tensor | None, Tensor]:
    """The per-step region: every step on `grid (S+1, B)` and the after-step guidance hooks.

    Never reads a device value on the host. Returns `(x (B, ...), trajectory (S+1, B, ...) or
    None, bad)`, where `bad` is a 0-d int64 tensor: the index of the first step whose state is
    not finite, or -1. After each step, the `after_step` hooks run, then the `on_population`
    hooks with the particles' log-weights (0 at the start). Each grid time is one tensor object
    from end to start of the next step, so a hook can hand the solver a model output it already
    computed there (`Dynamics.reuse`).
    """
    steps = grid.shape[0] - 1
    times = grid.unbind(0)
    population = _population_hooks(list(f.guidance))
    log_weights = x.new_zeros(x.shape[0]) if population else None
    f.begin()
    traj, sums, sum_dtype = [x], [], _sum_dtype(x)
    for i in range(steps):
        f.step = StepInfo(i, steps, generator)
        x, state = solver.step(f, x, times[i], times[i + 1], state, f.step)
        for g in f.guidance:
            x = g.after_step(x, times[i + 1], f)
        for g in population:
            x, log_weights = g.on_population(x, log_weights, times[i + 1], f)
        sums.append(x.sum(dtype=sum_dtype))
        if keep:
            traj.append(x)
    return x, torch.stack(traj) if keep else None, _first_false(torch.isfinite(torch.stack(sums)))


def _sum_dtype(x: Tensor) -> torch.dtype:
    """A dtype whose sum of a finite state stays finite (fp16/bf16 sums overflow), for the NaN
    record: one reduction per step, its NaN/Inf propagate from any non-finite entry."""
    return torch.promote_types(x.dtype, torch.float32) if x.is_floating_point() else x.dtype


def _first_false(ok: Tensor) -> Tensor:
    """Index of the first False in `ok (S,)` as a 0-d int64 tensor, -1 if none; on the device."""
    return torch.where(ok.all(), -1, (~ok).long().argmax())


def _replay(f, solver, x, grid, generator, keep, key):
    """Run the steps as one CUDA graph: captured on the first call for `key`, replayed after.

    `Solver.init` runs eagerly on every call (it may use the host); its state, `x`, `grid` and
    the tensors of the condition `f.cond` are copied into the graph's static buffers (its other
    values are part of the key). Returns `run_steps`' outputs and the NFE.
    """
    with torch.no_grad():
        state = solver.init(f, x, grid, generator)
    inputs = (x, grid, state, f.cond)
    key = (*key, flatten(inputs)[1])
    hit = CACHE.get(key)
    if hit is None or not hit[0].fits(generator):
        per_run: list[int] = []

        def body(x, grid, state, cond):
            f.cond = cond
            start = f.nfe
            out = run_steps(f, solver, x, grid, state, generator, keep)
            per_run.append(f.nfe - start)
            return out

        with torch.no_grad():
            captured = CapturedCall(body, inputs, generator)
        hit = CACHE.put(key, (captured, per_run[-1]), keepalive=(f, solver, generator))
    captured, calls = hit
    x, traj, bad = captured(inputs)
    return x, traj, bad, calls


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
