"""BDIA-DDIM: bi-directional integration approximation, an exactly invertible sampler.

Zhang, Lewis & Kleijn, "Exact diffusion inversion via bi-directional integration approximation"
(ECCV 2024, arXiv:2307.10829). Write `ddim(x_i, t_i -> s) = alpha(s) D_i + sigma(s) N_i` for the
DDIM jump from grid node `t_i` to time `s`, with `D_i, N_i` the data and noise predictions at
`(x_i, t_i)`. BDIA replaces the DDIM step `x_{i+1} = ddim(x_i, t_i -> t_{i+1})` by

    x_{i+1} = ddim(x_i, t_i -> t_{i+1}) + gamma * (x_{i-1} - ddim(x_i, t_i -> t_{i-1})),

approximating the integral over [t_{i-1}, t_{i+1}] by the forward and the backward DDIM
increments from `x_i`. The first step (no `x_{-1}`) is plain DDIM. One model call per step,
at `(x_i, t_i)`, so nfe = steps and the model is never called at the final time. The update is
linear in `x_{i-1}`, so it solves exactly for the earlier state:

    x_{i-1} = (x_{i+1} - ddim(x_i, t_i -> t_{i+1}) + gamma * ddim(x_i, t_i -> t_{i-1})) / gamma,

which `invert_pair` runs (through `flowforge.invert(..., solver="bdia")`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.field import Dynamics
from flowforge.solvers.base import Multistep
from flowforge.solvers.exponential import ExponentialSolver, Schedule, Weights
from flowforge.tensors import expand_like


@dataclass(frozen=True)
class BDIA(ExponentialSolver, Multistep):
    """BDIA-DDIM (Zhang et al. 2023): DDIM made time-symmetric, exactly invertible for gamma > 0.

    gamma = 1 is a second-order, time-reversible two-step method (the leapfrog rule written with
    DDIM increments); 0 < gamma < 1 mixes in DDIM and is first order; gamma = 0 is DDIM.
    Inversion divides by gamma once per step, so rounding errors grow like gamma^-steps: keep
    gamma = 1 when the round trip must be exact. nfe = steps; the first step is a DDIM step.

    >>> out = flowforge.sample(model, noise, path="vp_cosine", prediction="noise",
    ...                        solver="bdia", nfe=20, return_trajectory=True)
    >>> noise_again = flowforge.invert(model, out, path="vp_cosine", prediction="noise",
    ...                                solver="bdia", nfe=None)
    """

    gamma: Annotated[
        float, Field(ge=0, le=1, description="weight of the backward increment; 1: exact inverse")
    ] = 1.0

    default_grid = "uniform"

    @property
    def order(self) -> int:
        return 2 if self.gamma == 1.0 else 1

    @property
    def width(self) -> int:
        return 2

    def weights(self, schedule: Schedule) -> Weights:
        w = Weights(schedule, self.width)
        w.add("data", 0, schedule.alpha[1:])
        w.add("noise", 0, schedule.sigma[1:])
        later = slice(1, None)  # steps that have a previous node x_{i-1}
        w.add("x", 1, self.gamma, rows=later)
        w.add("data", 0, -self.gamma * schedule.alpha[:-2], rows=later)
        w.add("noise", 0, -self.gamma * schedule.sigma[:-2], rows=later)
        return w

    def invert_pair(
        self, f: Dynamics, x_last: Tensor, x_before: Tensor, grid: Tensor
    ) -> list[Tensor]:
        """The states of a BDIA solve on `grid (S+1, B)`, recovered from its last two.

        `x_last = x_S`, `x_before = x_{S-1}` (both `(B, ...)`); returns `[x_S, ..., x_0]` after
        S - 1 model calls, at `x_{S-1}, ..., x_1`, using the generation's own weights. Exact up
        to float rounding, provided the model is deterministic.
        """
        if self.gamma == 0:
            raise InvalidArgumentError(
                "bdia with gamma=0 is DDIM, which is not exactly invertible; use gamma=1"
            )
        w = self.weights(Schedule(f.path, f.prediction, grid)).w.to(x_last.dtype)
        states = [x_last, x_before]
        for i in range(grid.shape[0] - 2, 0, -1):
            x, pred = states[-1], f(states[-1], grid[i])
            out = pred.value if pred.kind == f.prediction else pred.as_(f.prediction)
            rest = states[-2] - expand_like(w[i, 0], x) * x - expand_like(w[i, 1], x) * out
            states.append(rest / expand_like(w[i, 2], x))
        return states
