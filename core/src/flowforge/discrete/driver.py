"""`flowforge.discrete.sample`: run a discrete solver on token states `(B, L)`.

A uniform time grid from t0 (noise) to t1 (data), one solver step per interval; the last step
leaves no corrupted token. The result reports the network calls actually made (`nfe`) and the
network evaluations per sample (`nfe_per_sample`), which differ from the step count when the
cached sampler skips rows or guidance calls the model more than once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from flowforge import registry
from flowforge.discrete.dynamics import DiscreteDynamics
from flowforge.discrete.guidance.base import DiscreteGuidance
from flowforge.discrete.paths import DiscretePath
from flowforge.discrete.solvers import DiscreteSolver
from flowforge.driver import guidance_list
from flowforge.errors import InvalidArgumentError
from flowforge.grids import make_grid
from flowforge.solvers.base import StepInfo
from flowforge.tensors import as_time


@dataclass(frozen=True)
class DiscreteSampleResult:
    """`x (B, L)` at t1; `trajectory (S+1, B, L)` or None; `times (S+1, B)`; `steps` taken;
    `nfe` network calls made; `nfe_per_sample` sequences evaluated per sample."""

    x: Tensor
    trajectory: Tensor | None
    times: Tensor
    steps: int
    nfe: int
    nfe_per_sample: float


def time_independent(model: Any) -> bool:
    """Whether `model` declares that it ignores `t` (`time_conditioned = False`, RADD)."""
    return getattr(model, "time_conditioned", True) is False


def _resolve(path: Any, solver: Any, guidance: Any) -> tuple[DiscretePath, DiscreteSolver, list]:
    path = registry.resolve("path", path)
    solver = registry.resolve("solver", solver)
    if not isinstance(path, DiscretePath):
        raise InvalidArgumentError(f"path must be a discrete path (masked, uniform), got {path!r}")
    if not isinstance(solver, DiscreteSolver):
        raise InvalidArgumentError(
            f"solver must be a discrete solver (ancestral, mdlm_cached, tau_leaping, ctmc_euler), "
            f"got {solver!r}"
        )
    hooks = guidance_list(
        guidance,
        DiscreteGuidance,
        "guidance {name} steers continuous solves; discrete samplers take discrete_cfg, svdd or "
        "infill",
    )
    return path, solver, hooks


def sample(
    model: Callable[..., Tensor],
    x_init: Tensor,
    *,
    path: str | DiscretePath,
    solver: str | DiscreteSolver,
    nfe: int,
    t_span: tuple[float, float] | None = None,
    guidance: Any = None,
    generator: torch.Generator | None = None,
    cond: Mapping[str, Any] | None = None,
    valid: Tensor | None = None,
    return_trajectory: bool = False,
) -> DiscreteSampleResult:
    """Sample tokens with `nfe` solver steps (at most `nfe` evaluations per sample).

    `model(x_t (B, L) int64, t (B,), **cond) -> logits (B, L, V)`; `x_init (B, L)` the start
    (`path.source(...)`: all masks for the masked path); `valid (B, L)` False on padding, which
    never changes; `guidance`: discrete guidance (`discrete_cfg`, `svdd`, `infill`).

    >>> path = MaskedPath(vocab_size=64)
    >>> x = path.source((16, 128), gen, "cpu")
    >>> out = sample(model, x, path=path, solver="mdlm_cached", nfe=128, generator=gen)
    >>> out.x, out.nfe
    """
    path, solver, hooks = _resolve(path, solver, guidance)
    if x_init.ndim != 2 or x_init.is_floating_point():
        raise InvalidArgumentError(
            f"x_init must be int64 tokens (B, L), got {x_init.dtype} {tuple(x_init.shape)}"
        )
    if solver.cache and not time_independent(model):
        raise InvalidArgumentError(
            f"solver {solver.name!r} reuses model outputs across times, which is exact only for "
            "a time-independent model (RADD): build the model without time input (it then sets "
            "time_conditioned = False), or use solver 'ancestral'"
        )
    steps = solver.steps_for_nfe(nfe)
    batch, device = x_init.shape[0], x_init.device
    like = torch.zeros((), dtype=torch.float32, device=device)
    t0, t1 = path.t_span if t_span is None else t_span
    t0, t1 = as_time(t0, batch, like), as_time(t1, batch, like)
    grid = make_grid("uniform", path, t0, t1, steps, "uniform")
    f = DiscreteDynamics(model, path, hooks, cond, cache=solver.cache)
    x = x_init.clone()
    f.frozen = None if valid is None else ~valid.to(device=device, dtype=torch.bool)
    f.generator = generator
    times = grid.unbind(0)
    for g in hooks:
        x = g.prepare(x, f)
    traj = [x]
    with torch.no_grad():
        for i in range(steps):
            info = StepInfo(i, steps, generator)

            def advance(state: Tensor, i: int = i, info: StepInfo = info) -> Tensor:
                return solver.step(f, state, times[i], times[i + 1], None, info)[0]

            for g in reversed(hooks):
                advance = _wrap(g, advance, times[i], times[i + 1], f)
            x = advance(x)
            if return_trajectory:
                traj.append(x)
    trajectory = torch.stack(traj) if return_trajectory else None
    return DiscreteSampleResult(x, trajectory, grid, steps, f.nfe, f.rows / batch)


def _wrap(g: DiscreteGuidance, inner, t0: Tensor, t1: Tensor, f: DiscreteDynamics):
    return lambda x: g.around_step(inner, x, t0, t1, f)
