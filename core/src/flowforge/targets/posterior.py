"""The exact posterior of a Gaussian-mixture prior under a linear measurement with Gaussian noise.

For `x ~ sum_k w_k N(mu_k, S_k)` and `y = A x + N(0, noise_std^2 I)`, `p(x | y)` is again a
Gaussian mixture: component k has the Kalman update of `N(mu_k, S_k)` and weight proportional to
`w_k N(y; A mu_k, A S_k A^T + noise_std^2 I)`. Ground truth for every posterior sampler.

Numerics: `A` is first reduced to its row space by an SVD (`y~ = U_r^T y = s_r V_r^T x + noise`),
so the innovation covariance is positive definite even without noise and with redundant rows;
Cholesky solves throughout, log-sum-exp for the weights, and each component covariance is kept
as a square-root factor in Joseph form, `C = (I - G A) S (I - G A)^T + noise_std^2 G G^T`,
which is positive semidefinite by construction and samples exactly when `C` is singular.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError, NumericalError
from flowforge.operators.base import Operator, check_noise_std

if TYPE_CHECKING:
    from flowforge.targets.gaussian_mixture import GaussianMixture

F64 = torch.float64
LOG_2PI = math.log(2 * math.pi)


class GaussianMixturePosterior:
    """A Gaussian mixture with full covariances: the posterior `p(x | y)` of one measurement.

    Build it with `GaussianMixture.posterior`. Everything is float64 on flattened signals of
    `dim` entries; samples and the mean take the prior's event shape. Without noise the mixture
    lives on the affine subspace `{x : A x = y}`: its covariances are singular and `log_prob` is
    the density with respect to the Lebesgue measure on that subspace (`support` spans it).

    >>> post = prior.posterior(op, y)           # op: a registered Operator or a matrix (m, n)
    >>> post.weights, post.means, post.covariances, post.mean, post.log_evidence
    >>> x = post.sample(10_000, generator=torch.Generator().manual_seed(0))
    """

    def __init__(
        self,
        means: Tensor,
        factors: Tensor,
        log_weights: Tensor,
        event_shape: tuple[int, ...],
        log_evidence: Tensor,
        support: Tensor | None = None,
    ):
        self.means = means  # (K, n)
        self.factors = factors  # (K, n, q): covariances = factors @ factors^T
        self.log_weights = log_weights  # (K,), normalised
        self.event_shape = event_shape
        self.log_evidence = log_evidence  # log p(y), a 0-d tensor
        self.support = support  # (n, p) orthonormal, or None for the whole space
        projected = factors if support is None else support.T @ factors
        chol, info = torch.linalg.cholesky_ex(projected @ projected.mT)
        if bool((info != 0).any()):
            raise NumericalError(
                "posterior covariance is numerically singular (noise_std is tiny but not 0); "
                "use noise_std = 0 for noiseless measurements, or a larger noise_std"
            )
        self._chol = chol

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def weights(self) -> Tensor:
        """Posterior component weights `(K,)`."""
        return self.log_weights.exp()

    @property
    def covariances(self) -> Tensor:
        """Component covariances `(K, n, n)` over flattened signals."""
        return self.factors @ self.factors.mT

    @property
    def mean(self) -> Tensor:
        """The posterior mean `E[x | y]`, of the event shape."""
        return (self.weights @ self.means).reshape(self.event_shape)

    @property
    def covariance(self) -> Tensor:
        """The posterior covariance `Cov[x | y]` `(n, n)` over flattened signals."""
        w, mean = self.weights, self.weights @ self.means
        outer = self.means[:, :, None] * self.means[:, None]
        second = (w[:, None, None] * (self.covariances + outer)).sum(0)
        return second - torch.outer(mean, mean)

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> Tensor:
        """`n` exact samples `(n, *event_shape)`: a component, then mean + factor @ N(0, I)."""
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.factors.shape[2], generator=generator, dtype=F64)
        x = torch.empty(n, self.dim, dtype=F64)
        for k in range(self.means.shape[0]):
            chosen = comp == k
            x[chosen] = self.means[k] + z[chosen] @ self.factors[k].T
        return x.reshape(n, *self.event_shape).to(dtype=dtype, device=device)

    def _component_log_prob(self, x: Tensor) -> Tensor:
        """`log w_k + log N_k(x)` `(N, K)`, on the support."""
        diff = x.reshape(x.shape[0], 1, -1).to(F64) - self.means[None]  # (N, K, n)
        if self.support is not None:
            diff = diff @ self.support
        z = torch.linalg.solve_triangular(self._chol, diff.permute(1, 2, 0), upper=False)
        p = self._chol.shape[-1]
        log_det = self._chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # (K,)
        log_n = -0.5 * z.square().sum(1) - log_det[:, None] - 0.5 * p * LOG_2PI  # (K, N)
        return (log_n + self.log_weights[:, None]).T

    def log_prob(self, x: Tensor) -> Tensor:
        """`log p(x | y)` for `x (N, *event_shape)` -> `(N,)` (float64)."""
        return torch.logsumexp(self._component_log_prob(x), dim=1)

    def responsibilities(self, x: Tensor) -> Tensor:
        """`p(component k | x, y)` `(N, K)`: which mixture component each sample belongs to."""
        return torch.softmax(self._component_log_prob(x), dim=1)


def _as_matrix(prior: GaussianMixture, operator: Operator | Tensor) -> Tensor:
    """The operator as a float64 matrix `(m, n)` on the prior's flattened event shape."""
    if isinstance(operator, Operator):
        if operator.signal_shape is not None and operator.signal_shape != prior.event_shape:
            raise InvalidArgumentError(
                f"operator: built for signals {operator.signal_shape}, but the prior's event "
                f"shape is {prior.event_shape}; build it with data_shape={prior.event_shape}"
            )
        return operator.matrix(prior.event_shape)
    matrix = torch.as_tensor(operator, dtype=F64).detach().cpu()
    if matrix.ndim != 2 or matrix.shape[1] != prior.dim:
        raise InvalidArgumentError(
            f"operator: a matrix must have shape (m, {prior.dim}) for this prior, got "
            f"{tuple(matrix.shape)}"
        )
    return matrix


def mixture_posterior(
    prior: GaussianMixture,
    operator: Operator | Tensor,
    y: Tensor | Sequence[float],
    noise_std: float | None = None,
) -> GaussianMixturePosterior:
    """`p(x | y)` for `y = A x + N(0, noise_std^2 I)`, `x ~ prior` (`GaussianMixture.posterior`)."""
    a = _as_matrix(prior, operator)
    if noise_std is None:
        noise_std = operator.noise_std if isinstance(operator, Operator) else 0.0
    sigma = check_noise_std(noise_std)
    m, n = a.shape
    y = torch.as_tensor(y, dtype=F64).detach().cpu().flatten()
    if y.numel() != m:
        expected = getattr(operator, "measurement_shape", None) or (m,)
        raise InvalidArgumentError(
            f"y: one measurement of shape {expected} ({m} entries) is expected, got "
            f"{y.numel()} entries; pass measurements one at a time"
        )
    u, s, vh = torch.linalg.svd(a, full_matrices=True)
    rank = int((s > s.max() * max(m, n) * torch.finfo(F64).eps).sum()) if s.numel() else 0
    a_row = s[:rank, None] * vh[:rank]  # (r, n): A on its row space
    y_row = u[:, :rank].T @ y
    outside = float((y - u[:, :rank] @ y_row).norm())
    if sigma == 0 and outside > 1e-6 * (1 + float(y.norm())):
        raise InvalidArgumentError(
            f"y is not in the range of A (residual {outside:.3g}) although noise_std is 0: "
            "noiseless measurements must satisfy y = A x; give the noise_std they were made with"
        )

    var = prior.stds.square()  # (K, n)
    a_var = a_row[None] * var[:, None, :]  # (K, r, n): A S_k
    innovation = a_var @ a_row.T + sigma**2 * torch.eye(rank, dtype=F64)
    chol = torch.linalg.cholesky(innovation)
    w = torch.linalg.solve_triangular(chol, a_var, upper=False)  # L^-1 A S_k
    e = torch.linalg.solve_triangular(
        chol, (y_row - prior.means @ a_row.T)[..., None], upper=False
    ).squeeze(-1)
    means = prior.means + (w.mT @ e[..., None]).squeeze(-1)
    log_det = chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    logits = prior.weights.log() - 0.5 * e.square().sum(-1) - log_det - 0.5 * rank * LOG_2PI
    log_norm = torch.logsumexp(logits, dim=0)
    log_evidence = log_norm
    if sigma > 0:  # the part of y outside the range of A is pure noise
        log_evidence = log_evidence - 0.5 * (
            outside**2 / sigma**2 + (m - rank) * math.log(2 * math.pi * sigma**2)
        )

    gain = torch.linalg.solve_triangular(chol.mT, w, upper=True).mT  # (K, n, r)
    factors = (torch.eye(n, dtype=F64) - gain @ a_row) * prior.stds[:, None, :]
    if sigma > 0:
        factors = torch.cat([factors, sigma * gain], dim=2)
    support = vh[rank:].T if sigma == 0 and rank > 0 else None
    return GaussianMixturePosterior(
        means, factors, logits - log_norm, prior.event_shape, log_evidence, support
    )
