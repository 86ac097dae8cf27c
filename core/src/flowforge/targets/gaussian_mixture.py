"""Gaussian mixtures: data distributions whose every prediction is known in closed form.

Under an affine path, `x_t | component k ~ N(alpha mu_k, (alpha^2 s_k^2 + sigma^2) I)`, so the
posterior over components, E[x_1 | x_t], E[x_0 | x_t], the score and the velocity are exact;
so is the posterior given a linear measurement with Gaussian noise (`posterior`). Tests and
benchmarks use them as ground truth for solvers, guidance, posterior samplers and likelihoods.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.operators.base import Operator
from flowforge.paths.base import AffinePath, check_prediction
from flowforge.targets.posterior import GaussianMixturePosterior, mixture_posterior
from flowforge.tensors import expand_like


class GaussianMixture:
    """Mixture of K diagonal Gaussians in `D` dimensions (event shape of the means' trailing dims).

    `means (K, *event)`, `stds` a float, `(K,)` or `(K, *event)`, `weights (K,)` (normalised).

    >>> gm = GaussianMixture(means=[[-2.0, 0.0], [2.0, 0.0]], stds=[0.5, 0.3], weights=[0.3, 0.7])
    >>> v = gm.predict(x_t, t, CondOT(), "velocity")   # the exact marginal velocity field
    >>> x1 = gm.sample(1000, generator=torch.Generator().manual_seed(0))
    """

    def __init__(
        self,
        means: Sequence | Tensor,
        stds: float | Sequence | Tensor,
        weights: Sequence | Tensor | None = None,
    ):
        means = torch.as_tensor(means, dtype=torch.float64)
        if means.ndim < 2:
            raise InvalidArgumentError(
                f"means must have shape (K, *event), got {tuple(means.shape)}"
            )
        k = means.shape[0]
        self.event_shape = tuple(means.shape[1:])
        self.means = means.reshape(k, -1)
        stds = torch.as_tensor(stds, dtype=torch.float64)
        if stds.ndim == 0:
            stds = stds.expand(k)
        if stds.shape == (k,):
            stds = stds[:, None].expand_as(self.means)
        self.stds = stds.reshape(k, -1).clone()
        if self.stds.shape != self.means.shape or bool((self.stds <= 0).any()):
            raise InvalidArgumentError("stds must be positive, of shape (K,) or the means' shape")
        w = (
            torch.ones(k, dtype=torch.float64)
            if weights is None
            else torch.as_tensor(weights, dtype=torch.float64)
        )
        if w.shape != (k,) or bool((w <= 0).any()):
            raise InvalidArgumentError(
                f"weights must be {k} positive numbers, got {tuple(w.shape)}"
            )
        self.weights = w / w.sum()

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> Tensor:
        """`n` exact samples `(n, *event)`."""
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        x = self.means[comp] + self.stds[comp] * eps
        return x.reshape(n, *self.event_shape).to(dtype=dtype, device=device)

    def _parts(self, x: Tensor, a: Tensor, s: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Per-component (responsibility-logits, mean, variance) of x_t, flattened to (B, K, D)."""
        mu = self.means.to(x)[None]
        var = a[:, None, None] ** 2 * self.stds.to(x)[None] ** 2 + s[:, None, None] ** 2
        diff = x.reshape(x.shape[0], 1, -1) - a[:, None, None] * mu
        logn = -0.5 * ((diff**2) / var + torch.log(2 * math.pi * var)).sum(-1)
        return logn + torch.log(self.weights.to(x))[None], mu, var, diff

    def marginal_log_prob(self, x_t: Tensor, t: Tensor, path: AffinePath) -> Tensor:
        """log p_t(x_t) under `path`; `x_t (B, *event)`, `t (B,)` -> `(B,)`."""
        logits, *_ = self._parts(x_t, path.alpha(t).to(x_t), path.sigma(t).to(x_t))
        return torch.logsumexp(logits, dim=1)

    def log_prob(self, x: Tensor) -> Tensor:
        """log density of the data distribution; `x (B, *event)` -> `(B,)`."""
        one = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
        logits, *_ = self._parts(x, one, torch.zeros_like(one))
        return torch.logsumexp(logits, dim=1)

    def predict(self, x_t: Tensor, t: Tensor, path: AffinePath, kind: str) -> Tensor:
        """The exact prediction of `kind` (velocity, data, noise, score) at `(x_t, t)`."""
        check_prediction(kind)
        a, s = path.alpha(t).to(x_t), path.sigma(t).to(x_t)
        logits, mu, var, diff = self._parts(x_t, a, s)
        r = torch.softmax(logits, dim=1)[..., None]
        data = (r * (mu + a[:, None, None] * self.stds.to(x_t)[None] ** 2 / var * diff)).sum(1)
        noise = (r * (s[:, None, None] / var * diff)).sum(1)
        data, noise = data.reshape(x_t.shape), noise.reshape(x_t.shape)
        if kind == "data":
            return data
        if kind == "noise":
            return noise
        if kind == "score":
            return -(r * diff / var).sum(1).reshape(x_t.shape)
        da, ds = (
            expand_like(path.d_alpha(t).to(x_t), x_t),
            expand_like(path.d_sigma(t).to(x_t), x_t),
        )
        return da * data + ds * noise

    def posterior(
        self,
        operator: Operator | Tensor,
        y: Tensor | Sequence[float],
        noise_std: float | None = None,
    ) -> GaussianMixturePosterior:
        """The exact posterior `p(x | y)` for `y = A x + N(0, noise_std^2 I)`: a Gaussian mixture.

        `operator`: any `Operator` (its matrix is materialised, so keep signals small) or a
        matrix `(m, dim)`; `y`: one measurement; `noise_std`: default the operator's (0 for a
        matrix), and 0 means noiseless (the posterior then lives on `{x : A x = y}`).
        """
        return mixture_posterior(self, operator, y, noise_std)

    def field(self, path: AffinePath, kind: str = "velocity") -> Callable[[Tensor, Tensor], Tensor]:
        """The exact model `(x_t, t) -> prediction` for `flowforge.sample`."""
        check_prediction(kind)
        return lambda x_t, t, **_: self.predict(x_t, t, path, kind)
