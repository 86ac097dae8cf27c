"""Discrete (CTMC) solvers for mixture paths: each step decides which tokens jump, then draws them.

A step draws two uniforms per token from the solve's generator, always in the same order: one
decides whether a corruptible token (a masked one, or any token of a uniform path) jumps in
`[t0, t1]`, the other picks its new value from `log p(x_1 | x_t)` by inverse CDF. The rules
differ only in the jump probability, with `w(t) = alpha'(t) / (1 - alpha(t))` the jump rate:

- `ancestral`: the exact posterior `(alpha(t1) - alpha(t0)) / (1 - alpha(t0))` (MDLM's sampler;
  SEDD's Tweedie tau-leaping for the absorbing path);
- `tau_leaping`: the rate frozen at `t0`, Poisson over the step: `1 - exp(-h w(t0))`;
- `ctmc_euler`: first order: `min(1, h w(t0))`.

`temperature` divides the log-probabilities a jumping token is drawn from (1: the model's
distribution, the default; below 1 sharper; 0 the most probable token), as in MDLM's and
MaskGIT's samplers; it trades diversity for typical tokens and leaves the jump rule alone.

`eta` (masked paths; default 0) adds remasking: a revealed token returns to the mask at rate
`eta`, and masked tokens unmask at the extra rate `eta alpha / (1 - alpha)` that keeps every
marginal `p_t` (the detailed-balance stochasticity of Campbell et al. 2024, "Generative flows on
discrete state-spaces", as in Multiflow; ReMDM's remasking, Wang et al. 2025). A token drawn
early, when little else was decided, can so be drawn again later; both rates are frozen at `t0`
over a step (first order), and the remask draw reuses the token's jump uniform, so `eta = 0` is
the same numbers as before. `eta_window: [t_on, t_off]` remasks only in steps that start inside
it, both ends included at the time grid's own precision (ReMDM's switch): any time profile of eta
keeps the marginals, and outside the window a step is the plain one, number for number.

The last step jumps every remaining corruptible token, so samples hold no mask. Because the
network is needed only for rows where something jumps, `cache=True` (`mdlm_cached`) skips the
other rows and reuses rows whose tokens did not change: identical samples for a fixed seed with a
time-independent model, and fewer calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor

from flowforge.discrete.dynamics import DiscreteDynamics
from flowforge.discrete.paths import DiscretePath, MaskedPath
from flowforge.errors import InvalidArgumentError
from flowforge.solvers.base import Discrete, Solver, StepInfo, steps_from_nfe


def inverse_cdf(log_p: Tensor, u: Tensor) -> Tensor:
    """Draw `(B, L)` tokens from `log_p (B, L, V)` with uniforms `u (B, L)` in [0, 1)."""
    cdf = log_p.double().exp().cumsum(-1)
    target = (u.double() * cdf[..., -1]).unsqueeze(-1)
    return torch.searchsorted(cdf, target).squeeze(-1).clamp_(max=log_p.shape[-1] - 1)


def tempered(log_p: Tensor, temperature: float) -> Tensor:
    """`log_p / temperature` shifted to a maximum of 0 (unnormalised, for `inverse_cdf`); at
    temperature 0 the most probable token alone (the first of equals)."""
    if temperature == 1.0:
        return log_p
    if temperature == 0.0:
        best = log_p.argmax(-1, keepdim=True)
        return torch.full_like(log_p, -torch.inf).scatter_(-1, best, 0.0)
    scaled = log_p / temperature
    top = scaled.amax(-1, keepdim=True)
    return scaled - top.clamp_min(torch.finfo(top.dtype).min)


@dataclass(frozen=True)
class DiscreteSolver(Solver, Discrete):
    """Base of the jump rules above: one network evaluation per step at most (nfe = steps)."""

    cache: Annotated[
        bool,
        Field(description="reuse evaluations of unchanged rows (time-independent models only)"),
    ] = False
    temperature: Annotated[
        float,
        Field(ge=0, description="of the drawn tokens' distribution (1: the model's; 0: argmax)"),
    ] = 1.0
    eta: Annotated[
        float,
        Field(ge=0, description="masked paths: remasking rate, balanced to keep the marginals"),
    ] = 0.0
    eta_window: Annotated[
        tuple[float, float],
        Field(
            description="[t_on, t_off]: remask only in steps that start in this range (inclusive)"
        ),
    ] = (0.0, 1.0)

    order: ClassVar[int] = 1

    def __post_init__(self) -> None:
        on, off = self.eta_window
        if not 0.0 <= on < off <= 1.0:
            raise InvalidArgumentError(
                f"eta_window must be [t_on, t_off] with 0 <= t_on < t_off <= 1, got "
                f"{list(self.eta_window)}"
            )

    def jump_prob(self, path: DiscretePath, t0: Tensor, t1: Tensor) -> Tensor:
        """Probability `(B,)` that a corruptible token jumps during `[t0, t1]`."""
        raise NotImplementedError

    def steps_for_nfe(self, nfe: int) -> int:
        return steps_from_nfe(self, nfe, 1)

    def path_problem(self, path: DiscretePath) -> str | None:
        """Why this solver cannot run on `path` (None when it can): remasking needs a mask."""
        if self.eta > 0 and not isinstance(path, MaskedPath):
            return (
                f"eta = {self.eta} remasks tokens, which needs a masked path (got "
                f"{type(path).__name__}); set the solver's eta to 0"
            )
        return None

    def step(
        self, f: DiscreteDynamics, x: Tensor, t0: Tensor, t1: Tensor, state: Any, info: StepInfo
    ) -> tuple[Tensor, Any]:
        gen = info.generator
        u_jump = torch.rand(x.shape, generator=gen, device=x.device, dtype=torch.float64)
        u_token = torch.rand(x.shape, generator=gen, device=x.device, dtype=torch.float64)
        remask = None
        if info.last:
            p = torch.ones_like(t0, dtype=torch.float64)
        else:
            p = self.jump_prob(f.path, t0.double(), t1.double()).clamp(0.0, 1.0)
            if self.eta > 0:
                on, off = self.eta_window  # compared at the grid's own precision
                active = (t0 >= on) & (t0 <= off)
                p, remask = self._remasking(f, x, t0.double(), t1.double(), p, u_jump, active)
        jump = f.eligible(x) & (u_jump < p[:, None])
        log_p = tempered(f.log_probs(x, t0, need=jump.any(dim=1)), self.temperature)
        x_next = torch.where(jump, inverse_cdf(log_p, u_token), x)
        if remask is not None:
            x_next = x_next.masked_fill(remask, f.path.mask_id)
        return x_next, state

    def _remasking(
        self,
        f: DiscreteDynamics,
        x: Tensor,
        t0: Tensor,
        t1: Tensor,
        p: Tensor,
        u: Tensor,
        active: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """The unmask probability with the balancing rate added, and which revealed tokens
        return to the mask (`u < 1 - exp(-eta h)`), in the rows `active (B,)` of the window."""
        problem = self.path_problem(f.path)
        if problem:
            raise InvalidArgumentError(problem)
        h = (t1 - t0).abs()
        a0 = f.path.noise_schedule.alpha(t0)
        balanced = 1 - (1 - p) * torch.exp(-self.eta * h * a0 / (1 - a0))
        revealed = x != f.path.mask_id
        if f.frozen is not None:
            revealed &= ~f.frozen
        remask = revealed & (u < (-torch.expm1(-self.eta * h))[:, None]) & active[:, None]
        return torch.where(active, balanced, p), remask


@dataclass(frozen=True)
class Ancestral(DiscreteSolver):
    """Exact posterior step (MDLM ancestral sampling; Tweedie tau-leaping for absorbing paths)."""

    def jump_prob(self, path, t0, t1):
        a = path.noise_schedule
        a0, a1 = a.alpha(t0), a.alpha(t1)
        return (a1 - a0) / (1 - a0)


@dataclass(frozen=True)
class MDLMCached(Ancestral):
    """Ancestral steps with the RADD/MDLM cache: the network reruns only for changed rows."""

    cache: Annotated[bool, Field(description="reuse evaluations of unchanged rows")] = True


@dataclass(frozen=True)
class TauLeaping(DiscreteSolver):
    """Tau-leaping: the jump rate frozen at t0, jumps with probability 1 - exp(-h rate)."""

    def jump_prob(self, path, t0, t1):
        return -torch.expm1(-(t1 - t0) * path.noise_schedule.elbo_weight(t0))


@dataclass(frozen=True)
class CTMCEuler(DiscreteSolver):
    """Euler for CTMCs: jump probability h * rate(t0), capped at 1."""

    def jump_prob(self, path, t0, t1):
        return (t1 - t0) * path.noise_schedule.elbo_weight(t0)
