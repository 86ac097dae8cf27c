"""Twisted sequential Monte Carlo: the batch as a particle population, exact as it grows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.field import Dynamics, Prediction
from flowforge.guidance.posterior import PosteriorGuidance, data_variance
from flowforge.tensors import expand_like


@dataclass(frozen=True)
class SMC(PosteriorGuidance):
    """Twisted SMC over the solver's own steps (a Feynman-Kac corrector). Hook: on the population.

    The batch is split into populations of `particles`; the solver's unguided steps are the
    proposal (Markov kernels M_k on the grid t_0 < ... < t_K), and after each step every
    particle is reweighted by the change of a twisting potential, the likelihood of y given
    the data estimate as in PiGDM (`Measurement.log_likelihood`):

        log G_k(x_k) = log p~_k(y | x_k) - log p~_{k-1}(y | x_{k-1}),  p~_0 = 1
        p~_k(y | x) = N(y; A D(x, t_k), sigma_y^2 I + r_k^2 A A^T),  r_k^2 as in pigdm
        resample (systematic or multinomial, from the solve's generator) when
        ESS = 1 / sum_i w_i^2 < ess_threshold * particles, and always after the last step.

    Why it is exact as particles grow: the potentials telescope, so a particle path's total
    weight is `p~_K(y | x_K)`; where sigma(t_K) = 0 the data estimate is the sample itself and
    r_K = 0, so this is the exact likelihood `p(y | x_K)`. The Feynman-Kac target at the end is
    therefore `q(x_K) p(y | x_K)`, with `q` the law of the solver's output, i.e. the posterior
    under the model's prior, whatever the kernels and twists (they only set the variance).
    Resampled particle systems converge to it in the number of particles N, with O(1/N) bias
    and O(1/sqrt(N)) error (Del Moral 2004, ch. 7; Wu et al. 2023 "TDS", Thm. 1, for the
    twisted case). The returned particles are equally weighted posterior samples.

    Use a stochastic solver (reverse_sde, euler_maruyama) so that resampled copies spread
    again; an ODE solver is still consistent but only reweights its trajectories. Solvers that
    carry past evaluations between steps (`Multistep`) are refused: their history would not
    follow the resampled particles. Needs sigma_y > 0. Guidance that changes predictions
    (dps, cfg, ...) changes the proposal, which this correction does not account for.
    Model calls: the potential needs D at each new state; it is evaluated once and handed to
    the solver's next step (`Dynamics.reuse`), so solvers that evaluate at a step's start make
    no extra calls (all fixed-step ones in core).

    Parameters: `particles` N >= 2 dividing the batch (None: the whole batch, one population);
    `ess_threshold` in (0, 1] (1: resample every step); `resampling`; `prior_var` > 0 (the
    data variance in r_k^2).

    >>> y1 = y.expand(1024, -1)   # 16 populations of 64 particles, one measurement
    >>> flowforge.sample(model, noise, path="cond_ot", prediction="velocity",
    ...                  solver="reverse_sde", nfe=100, generator=g,
    ...                  guidance=SMC(particles=64, measurement=Measurement(op, y1)))
    """

    particles: Annotated[
        int | None, Field(ge=2, description="particles per population (None: the batch)")
    ] = None
    ess_threshold: Annotated[
        float, Field(gt=0, le=1, description="resample when ESS < threshold * particles")
    ] = 0.5
    resampling: Annotated[
        Literal["systematic", "multinomial"], Field(description="resampling scheme")
    ] = "systematic"
    prior_var: Annotated[
        float, Field(gt=0, description="data variance per coordinate in the twist's r_t^2")
    ] = 1.0

    name = "smc"

    def on_population(
        self, x: Tensor, log_weights: Tensor, t: Tensor, dynamics: Dynamics
    ) -> tuple[Tensor, Tensor]:
        m = self.given()
        batch = x.shape[0]
        n = batch if self.particles is None else self.particles
        if batch % n:
            raise InvalidArgumentError(
                f"smc: the batch of {batch} does not split into populations of particles={n}; "
                "use a batch size that is a multiple of particles"
            )
        with torch.no_grad():
            raw = dynamics.network(x, t)
            data = Prediction(raw, dynamics.prediction, x, t, dynamics.path).data
            data = torch.where(expand_like(dynamics.path.sigma(t) == 0, x), x, data)
            var = data_variance(dynamics.path, t, self.prior_var).to(x.dtype)
            twist = m.log_likelihood(data, var).to(log_weights.dtype)
        mem = dynamics.memory(self)
        log_weights = log_weights + twist - mem.get("twist", torch.zeros_like(twist))
        step = dynamics.step
        last = step is not None and step.last
        groups = log_weights.reshape(batch // n, n)
        w = torch.softmax(groups, dim=1)
        resample = (1 / w.square().sum(1) < self.ess_threshold * n) | last
        local = self._ancestors(w, None if step is None else step.generator)
        offset = torch.arange(0, batch, n, device=x.device)[:, None]
        own = torch.arange(batch, device=x.device).reshape(batch // n, n)
        idx = torch.where(resample[:, None], local + offset, own).reshape(batch)
        x, raw = x[idx], raw[idx]
        mem["twist"] = twist[idx]
        log_weights = torch.where(resample[:, None], torch.zeros_like(groups), groups).reshape(
            batch
        )
        if not last:
            dynamics.reuse(x, t, raw)
        return x, log_weights

    def _ancestors(self, w: Tensor, generator: torch.Generator | None) -> Tensor:
        """Ancestor indices `(P, N)` within each population drawn from its weights `w (P, N)`."""
        device = w.device if generator is None else generator.device
        p, n = w.shape
        if self.resampling == "multinomial":
            draws = torch.multinomial(_to(w, device), n, replacement=True, generator=generator)
            return _to(draws, w.device)
        u = _to(torch.rand(p, 1, generator=generator, dtype=w.dtype, device=device), w.device)
        points = (u + torch.arange(n, dtype=w.dtype, device=w.device)) / n
        cdf = torch.cumsum(w, dim=1)
        return torch.searchsorted(cdf, points).clamp(max=n - 1)


def _to(t: Tensor, device: torch.device) -> Tensor:
    """`t` on `device`: itself when it is there already (no copy)."""
    return t if t.device == device else t.to(device)
