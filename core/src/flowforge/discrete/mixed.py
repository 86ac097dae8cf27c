"""`sample_mixed`: one network call per step advances every key of a structured state.

Continuous keys take a step of a core solver that evaluates the field once per step, at the
start of the step (`euler`, `ddim`, `dpm_solver_pp`, `euler_maruyama`, `reverse_sde`, ...),
fed the shared call's prediction for that key; discrete keys take a discrete solver's step
(`ancestral`, `tau_leaping`, `ctmc_euler`) with its logits. Padding (the mask key) never
changes. The grid spans the product path's `t_span` (or `t_span`): `uniform` by default, or
`logsnr` / `edm` / `auto` spaced by the first continuous key's affine path, or explicit times.

>>> model(state, t) -> {"pos": velocity (B, N, 3), "atom_type": logits (B, N, K)}
>>> out = sample_mixed(model, path.source(template, gen), path=path,
...                    predictions={"pos": "velocity"},
...                    solvers={"pos": "euler", "atom_type": "ancestral"}, nfe=100, generator=gen)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from flowforge import registry
from flowforge.discrete.dynamics import DiscreteDynamics
from flowforge.discrete.product import ProductPath, State
from flowforge.discrete.solvers import DiscreteSolver
from flowforge.errors import InvalidArgumentError
from flowforge.field import Dynamics
from flowforge.grids import make_grid, resolve_grid
from flowforge.paths.base import AffinePath
from flowforge.solvers.base import Adaptive, Solver, StepInfo
from flowforge.tensors import as_time


class _SharedCall(Dynamics):
    """A continuous key's dynamics: its prediction comes from the step's shared network call."""

    def network(self, x_t, t, cond=None):
        raise InvalidArgumentError(
            f"solver {getattr(self.solver, 'name', self.solver)!r} evaluates the field more than "
            "once per step or away from the step's start; mixed states make one network call per "
            "step: use euler, ddim, dpm_solver_pp, euler_maruyama or reverse_sde"
        )


def _steps(solver: Solver, nfe: int) -> int | None:
    try:
        return solver.steps_for_nfe(nfe)
    except InvalidArgumentError:
        return None


def _solvers(path: ProductPath, solvers: Mapping[str, Any], nfe: int) -> dict[str, Solver]:
    out = {}
    for k in path.paths:
        if k not in solvers:
            raise InvalidArgumentError(f"solvers has no entry for key {k!r}")
        s = registry.resolve("solver", solvers[k])
        discrete = k in path.discrete_keys
        if discrete != isinstance(s, DiscreteSolver):
            kind = "a discrete" if discrete else "a continuous"
            raise InvalidArgumentError(f"key {k!r} needs {kind} solver, got {s.name!r}")
        if not discrete and (isinstance(s, Adaptive) or _steps(s, nfe) != nfe):
            raise InvalidArgumentError(
                f"solver {s.name!r} for key {k!r} does not make one evaluation per step; mixed "
                "states share one network call per step (euler, ddim, dpm_solver_pp, ...)"
            )
        out[k] = s
    return out


def _grid(time_grid: str | Tensor, path: ProductPath, chosen: Mapping[str, Solver], t0, t1, nfe):
    """The `(nfe + 1, B)` grid: a grid name (`auto` included) follows the first continuous
    key's affine path and solver; without one, only a uniform or explicit grid."""
    keys = path.continuous_keys
    if keys:
        return make_grid(time_grid, path.paths[keys[0]], t0, t1, nfe, chosen[keys[0]].default_grid)
    if isinstance(time_grid, str) and resolve_grid(time_grid, path, "uniform") != "uniform":
        raise InvalidArgumentError(
            f"time_grid {time_grid!r} is spaced by a continuous key's path and this state has "
            "none; use 'uniform' or explicit times"
        )
    return make_grid(time_grid, path, t0, t1, nfe, "uniform")


def sample_mixed(
    model: Callable[..., Mapping[str, Tensor]],
    x_init: Mapping[str, Tensor],
    *,
    path: ProductPath,
    predictions: Mapping[str, str],
    solvers: Mapping[str, Any],
    nfe: int,
    t_span: tuple[float, float] | None = None,
    generator: torch.Generator | None = None,
    cond: Mapping[str, Any] | None = None,
    time_grid: str | Tensor = "uniform",
) -> State:
    """Integrate a structured state from `t_span[0]` to `t_span[1]` with `nfe` network calls.

    `model(state, t, **cond)` returns a dict: for each continuous key a prediction of kind
    `predictions[key]` (velocity, data, noise, score) for its affine path, for each discrete key
    clean-token logits `(B, N, K)`. `solvers`: a registered name or solver per key.
    `time_grid`: a grid name (`flowforge.grids`; the log-SNR ones follow the first continuous
    key's path) or explicit times `(nfe + 1,)` / `(nfe + 1, B)`.
    """
    if nfe < 1:
        raise InvalidArgumentError(f"nfe must be a positive integer, got {nfe}")
    chosen = _solvers(path, solvers, nfe)
    state = dict(x_init)
    any_key = state[next(iter(path.paths))]
    batch, device = any_key.shape[0], any_key.device
    like = torch.zeros((), device=device)
    t0, t1 = path.t_span if t_span is None else t_span
    t0, t1 = as_time(t0, batch, like), as_time(t1, batch, like)
    grid = _grid(time_grid, path, chosen, t0, t1, nfe)
    times = grid.unbind(0)
    valid = path.valid(state)
    dyn: dict[str, Dynamics] = {}
    solver_state: dict[str, Any] = {}
    for k in path.continuous_keys:
        p = path.paths[k]
        if not isinstance(p, AffinePath):
            raise InvalidArgumentError(f"key {k!r}: continuous keys need an affine path")
        dyn[k] = _SharedCall(lambda x, t: x, p, predictions[k], (), None, chosen[k])
        grid_k = grid.to(state[k].dtype)
        solver_state[k] = chosen[k].init(dyn[k], state[k], grid_k, generator)
        dyn[k].begin()
    with torch.no_grad():
        for i in range(nfe):
            info = StepInfo(i, nfe, generator)
            out = model(state, times[i], **(cond or {}))
            new = dict(state)
            for k in path.continuous_keys:
                x = state[k]
                t_a, t_b = times[i].to(x.dtype), times[i + 1].to(x.dtype)
                dyn[k].reuse(x, t_a, out[k].to(x.dtype))
                dyn[k].step = info
                x_next, solver_state[k] = chosen[k].step(dyn[k], x, t_a, t_b, solver_state[k], info)
                if valid is not None:
                    keep = valid.reshape(valid.shape + (1,) * (x.ndim - valid.ndim))
                    x_next = torch.where(keep, x_next, x)
                new[k] = x_next
            for k in path.discrete_keys:
                logits = out[k]
                f = DiscreteDynamics(lambda x, t, _l=logits: _l, path.paths[k])
                f.frozen = None if valid is None else ~valid
                new[k] = chosen[k].step(f, state[k], times[i], times[i + 1], None, info)[0]
            state = new
    return state
