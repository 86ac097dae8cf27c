"""Exact log-likelihood of a trained flow through the probability-flow ODE.

Along the ODE `dx/dt = v(x, t)` the log-density obeys `d log p_t(x_t) / dt = -div v(x_t, t)`, so

    log p_1(x_1) = log p_0(x_0) - int_{t0}^{t1} div v(x_t, t) dt,

where `x_0` is `x_1` carried back to `t0`. The state `[x, delta] (B, D + 1)` is integrated
backwards from t1 to t0 with any core solver through `flowforge.sample`; the divergence is the
exact trace of the Jacobian (one backward pass per dimension: exact, and cheap in low dimension).

The source density at `t0` is taken as `N(0, sigma(t0)^2 I)` (`prior_log_prob`). That is exact
when `alpha(t0) = 0` (cond_ot, vp_cosine) and close when `alpha(t0)` is small (vp_linear). For
variance-exploding paths (`ve`, `edm`: alpha = 1) `x_t0 = x_1 + sigma(t0) x_0` is approximately
`N(0, sigma(t0)^2 I)` only when sigma(t0) is much larger than the data scale; the same
approximation is what sampling starts from (`prior_sample`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from flowforge import registry
from flowforge.driver import sample
from flowforge.errors import InvalidArgumentError
from flowforge.paths.base import AffinePath, check_prediction
from flowforge.solvers.base import Solver
from flowforge.tensors import as_time, expand_like


def prior_std(path: AffinePath, t0: float | Tensor, like: Tensor) -> Tensor:
    """sigma(t0) as a `(B,)` tensor: the scale of the source distribution at `t0`."""
    return path.sigma(as_time(t0, like.shape[0], like))


def prior_sample(
    path: AffinePath,
    shape: tuple[int, ...],
    t0: float,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """`x_init (B, ...) = sigma(t0) * N(0, I)`: the source sample for a solve starting at `t0`."""
    noise = torch.randn(shape, generator=generator, dtype=dtype, device=device)
    return expand_like(prior_std(path, t0, noise), noise) * noise


def prior_log_prob(path: AffinePath, x: Tensor, t0: float | Tensor) -> Tensor:
    """log N(x; 0, sigma(t0)^2 I) per sample; `x (B, ...)` -> `(B,)`."""
    s = prior_std(path, t0, x)
    dim = x[0].numel()
    sq = (x.reshape(x.shape[0], -1) ** 2).sum(1)
    return -0.5 * sq / s**2 - dim * torch.log(s) - 0.5 * dim * math.log(2 * math.pi)


def divergence(v: Tensor, x: Tensor) -> Tensor:
    """Exact `div_x v = tr(dv/dx)` per sample via autograd; `v, x (B, ...)` -> `(B,)`.

    `v` must be computed from `x` with the graph kept; one backward pass per dimension.
    """
    flat = v.reshape(v.shape[0], -1)
    div = torch.zeros(v.shape[0], dtype=v.dtype, device=v.device)
    for i in range(flat.shape[1]):
        (grad,) = torch.autograd.grad(flat[:, i].sum(), x, retain_graph=True)
        div = div + grad.reshape(grad.shape[0], -1)[:, i]
    return div


class AugmentedField:
    """`(z = [x, delta] (B, D + 1), t) -> [v(x, t), div v(x, t)]`: the ODE of `log_likelihood`.

    The model's prediction is converted to a velocity through the path, so it works for every
    prediction kind.
    """

    def __init__(
        self,
        field: Callable[[Tensor, Tensor], Tensor],
        path: AffinePath,
        prediction: str,
        event_shape: tuple[int, ...],
    ):
        self.field = field
        self.path = path
        self.prediction = check_prediction(prediction)
        self.event_shape = event_shape

    def __call__(self, z: Tensor, t: Tensor) -> Tensor:
        with torch.enable_grad():
            x = z[:, :-1].detach().reshape(z.shape[0], *self.event_shape).requires_grad_(True)
            pred = self.field(x, t)
            v = self.path.convert(pred, self.prediction, "velocity", x, t)
            div = divergence(v, x)
        return torch.cat([v.detach().reshape(z.shape[0], -1), div.detach()[:, None]], dim=1)


def log_likelihood(
    field: Callable[[Tensor, Tensor], Tensor],
    x_1: Tensor,
    *,
    path: str | AffinePath,
    prediction: str,
    solver: str | Solver = "rk4",
    nfe: int = 40,
    t_span: tuple[float, float] | None = None,
) -> Tensor:
    """log p(x_1) under the flow of `field`, per sample: `x_1 (B, ...)` -> `(B,)` in nats.

    `field(x_t, t)` makes a `prediction` for `path` (a registered name or an object); the ODE
    runs from `t_span[1]` back to `t_span[0]` (default: the path's `t_span`) with `solver` and
    exactly `nfe` evaluations.
    Use float64 inputs for tight accuracy. Narrow `t_span` away from the end points where a
    data/noise/score prediction has no finite velocity.

    >>> logp = log_likelihood(model, x_test, path=CondOT(), prediction="velocity", nfe=80)
    >>> nll = -logp.mean()
    """
    path = registry.resolve("path", path)
    if not isinstance(path, AffinePath):
        raise InvalidArgumentError(f"log_likelihood needs an affine Gaussian path, got {path!r}")
    t0, t1 = path.t_span if t_span is None else t_span
    aug = AugmentedField(field, path, prediction, tuple(x_1.shape[1:]))
    flat = x_1.reshape(x_1.shape[0], -1)
    z1 = torch.cat([flat, flat.new_zeros(flat.shape[0], 1)], dim=1)
    z0 = sample(
        aug,
        z1,
        path=path,
        prediction="velocity",
        solver=solver,
        nfe=nfe,
        t_span=(t1, t0),
        time_grid="uniform",
    )
    x_0 = z0[:, :-1].reshape(x_1.shape)
    return prior_log_prob(path, x_0, t0) + z0[:, -1]
