"""Inverse problems with a known posterior, and how far a set of samples is from it.

A Gaussian-mixture prior, a linear operator with Gaussian noise and one measurement have an
exact Gaussian-mixture posterior (`GaussianMixture.posterior`). A sampler is scored by three
errors against it: of the sample mean, of the component weights (the mean responsibility of the
samples minus the exact weights, L1) and the sliced Wasserstein-2 distance to exact samples.
Two references put the numbers in context: the floor (two exact sample sets of the same size:
what a perfect sampler gets) and the unguided prior's samples (what ignoring y gets). Used by
the guidance tests and `benchmarks/guidance.py`.

    problem = mixture_problem("mask", d=16)
    x = problem.solve([DPS(measurement=problem.measurement)], n=1000)
    problem.errors(x), problem.floor(1000), problem.unguided
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch
from torch import Tensor

import flowforge
from flowforge import registry
from flowforge.errors import InvalidArgumentError
from flowforge.guidance import Measurement
from flowforge.metrics.sliced_wasserstein import sliced_wasserstein
from flowforge.operators import Dense, Downsample, Mask, Operator, gaussian_matrix, random_mask
from flowforge.targets import GaussianMixture
from flowforge.targets.posterior import GaussianMixturePosterior

F64 = torch.float64
PROJECTIONS = 200
FLOOR_REPEATS = 4


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@dataclass
class PosteriorProblem:
    """A prior, an operator, one measurement and the exact posterior (float64, flat signals)."""

    prior: GaussianMixture
    operator: Operator
    y: Tensor
    posterior: GaussianMixturePosterior = field(repr=False)

    @property
    def measurement(self) -> Measurement:
        return Measurement(self.operator, self.y)

    def errors(self, x: Tensor, seed: int = 0) -> dict[str, float]:
        """Mean, weight and sliced-W2 errors of samples `x (n, d)` against the posterior."""
        post = self.posterior
        ref = post.sample(x.shape[0], gen(1000 + seed), dtype=F64)
        return {
            "mean": float((x.mean(0) - post.mean).norm()),
            "weights": float((post.responsibilities(x).mean(0) - post.weights).abs().sum()),
            "sw": float(sliced_wasserstein(x, ref, PROJECTIONS, gen(0))),
        }

    def floor(self, n: int) -> dict[str, float]:
        """The errors of exact samples of size `n`, averaged over a few draws."""
        runs = [
            self.errors(self.posterior.sample(n, gen(2000 + r), dtype=F64), seed=r)
            for r in range(FLOOR_REPEATS)
        ]
        return {k: sum(r[k] for r in runs) / len(runs) for k in runs[0]}

    @cached_property
    def unguided(self) -> dict[str, float]:
        """The errors of 1000 samples of the prior, which ignore y."""
        return self.errors(self.solve([], n=1000))

    def solve(
        self,
        guidance: list,
        *,
        n: int = 1000,
        solver: object = "euler",
        nfe: int = 100,
        path: str = "cond_ot",
        prediction: str = "velocity",
        seed: int = 2,
        t_span: tuple[float, float] | None = None,
    ) -> Tensor:
        """`n` samples of the prior's exact model steered by `guidance`, in float64."""
        p = registry.create("path", path)
        g = gen(seed)
        x0 = torch.randn(n, self.prior.dim, generator=g, dtype=F64)
        return flowforge.sample(
            self.prior.field(p, prediction),
            x0,
            path=path,
            prediction=prediction,
            solver=solver,
            nfe=nfe,
            guidance=guidance,
            generator=g,
            t_span=t_span,
        )


def mixture_problem(
    kind: str, d: int = 16, noise_std: float = 0.1, c_range: float = 0.5, seed: int = 1
) -> PosteriorProblem:
    """A 3-component mixture in `d` dimensions seen through a 50% mask ("mask"), the means of
    blocks of 4 ("downsample", 4x super-resolution of a 1-D signal) or a dense Gaussian
    `(d/2, d)` matrix ("dense") with noise `noise_std`, and one measurement.

    The components differ mostly in the null space of A (offsets of scale 2) and by `c_range`
    in its range, so y informs the component weights without deciding them.
    """
    g = gen(seed)
    if kind == "mask":
        op: Operator = Mask(random_mask((d,), 0.5, g), (d,), noise_std=noise_std)
    elif kind == "downsample":
        op = Downsample(4, (d,), spatial_dims=1, noise_std=noise_std)
    elif kind == "dense":
        op = Dense(gaussian_matrix(d // 2, d, g), (d,), noise_std=noise_std)
    else:
        raise InvalidArgumentError(
            f"mixture_problem: kind is 'mask', 'downsample' or 'dense', got {kind!r}"
        )
    a = op.matrix((d,))
    range_proj = torch.linalg.pinv(a) @ a
    xi = torch.randn(3, d, generator=g, dtype=F64)
    means = 2.0 * xi @ (torch.eye(d, dtype=F64) - range_proj).T + c_range * xi @ range_proj.T
    stds = (0.4 + 0.3 * torch.rand(3, 1, generator=g, dtype=F64)).expand(3, d)
    prior = GaussianMixture(means, stds, weights=[0.5, 0.3, 0.2])
    y = op.simulate(prior.sample(1, g, dtype=F64), g)
    return PosteriorProblem(prior, op, y, prior.posterior(op, y))
