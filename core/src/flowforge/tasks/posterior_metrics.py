"""How good posterior samples are: data consistency, error against the truth, distance to the exact
posterior. All in data units, float64, for reconstructions `(M, S, *data_shape)`: S posterior
samples for each of M measurements.

- Consistency, always: `residual` = mean `||A x - y||` over samples, `residual_posterior_mean`
  (the same for each posterior mean), and `residual_noise_level` = `noise_std sqrt(m)`, about
  what the true signal leaves (a residual far below it fits the noise; far above, ignores y).
- Against the ground truth, when the measurements were simulated: `error_posterior_mean` (L2),
  `rmse_posterior_mean`, `psnr_posterior_mean` (dB, with the explicit `data_range`),
  `residual_truth` (`||A x_true - y||`: the noise actually drawn), and for images `(C, H, W)`
  `ssim_posterior_mean` (scikit-image, Wang et al. 2004, the same `data_range`).
- Against the exact posterior, when the prior is a `GaussianMixture`: `posterior_mean_error_exact`,
  `weights_error_exact` (L1 between the samples' mean responsibilities and the exact component
  weights), `sliced_wasserstein_exact` (SW2 to exact posterior samples of the same size),
  `sliced_wasserstein_exact_floor` (SW2 between two exact sample sets: what a perfect sampler
  gets) and their ratio.
Each is averaged over the M measurements.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError, MissingDependencyError
from flowforge.metrics.sliced_wasserstein import sliced_wasserstein
from flowforge.operators import Operator
from flowforge.targets import GaussianMixture

F64 = torch.float64
SSIM_WINDOW = 7  # scikit-image's default window: images need both sides at least this long
FLOOR_REPEATS = 4


def is_image(data_shape: tuple[int, ...]) -> bool:
    """Whether points of `data_shape` are images `(C, H, W)` that SSIM can score."""
    return len(data_shape) == 3 and min(data_shape[1:]) >= SSIM_WINDOW


def require_ssim() -> Callable[..., float]:
    """scikit-image's `structural_similarity`, or an error saying how to install it."""
    try:
        from skimage.metrics import structural_similarity
    except ImportError:
        raise MissingDependencyError(
            "scikit-image",
            "SSIM of image reconstructions (the inverse_problem task)",
            "pip install 'flowforge[images]'",
        ) from None
    return structural_similarity


def posterior_summary(recon: Tensor) -> tuple[Tensor, Tensor]:
    """Per-measurement posterior mean and per-entry standard deviation, `(M, *data_shape)` each.

    The std is the unbiased sample std (0 for a single sample).
    """
    samples = recon.double()
    std = samples.std(dim=1, correction=1 if samples.shape[1] > 1 else 0)
    return samples.mean(dim=1).float(), std.float()


def _residuals(operator: Operator, x: Tensor, y: Tensor) -> Tensor:
    """`||A x_i - y_i||` per row, `(N,)`, for `x (N, *data_shape)` and `y (N, ...)`."""
    return (operator.forward(x.double()) - y.double()).flatten(1).norm(dim=1)


def consistency(operator: Operator, recon: Tensor, mean: Tensor, y: Tensor) -> dict[str, float]:
    """Data-consistency residuals of the samples and of the posterior means."""
    m, s = recon.shape[:2]
    samples = recon.reshape(m * s, *recon.shape[2:])
    y_rep = y.repeat_interleave(s, dim=0)
    return {
        "residual": float(_residuals(operator, samples, y_rep).mean()),
        "residual_posterior_mean": float(_residuals(operator, mean, y).mean()),
        "residual_noise_level": operator.noise_std * math.sqrt(y[0].numel()),
    }


def psnr(mse: Tensor, data_range: float) -> Tensor:
    """Peak signal-to-noise ratio in dB, `10 log10(data_range^2 / mse)` (inf where mse is 0)."""
    return 10 * torch.log10(data_range**2 / mse.double())


def truth_errors(
    operator: Operator,
    mean: Tensor,
    truth: Tensor,
    y: Tensor,
    data_range: float,
    images: bool,
) -> dict[str, float]:
    """Errors of the posterior means `(M, ...)` against the true signals, and their residual."""
    diff = (mean.double() - truth.double()).flatten(1)
    mse = diff.square().mean(dim=1)
    out = {
        "error_posterior_mean": float(diff.norm(dim=1).mean()),
        "rmse_posterior_mean": float(mse.sqrt().mean()),
        "psnr_posterior_mean": float(psnr(mse, data_range).mean()),
        "residual_truth": float(_residuals(operator, truth, y).mean()),
        "data_range": float(data_range),
    }
    if images:
        ssim = require_ssim()
        scores = [
            ssim(t.double().numpy(), x.double().numpy(), data_range=data_range, channel_axis=0)
            for t, x in zip(truth, mean, strict=True)
        ]
        out["ssim_posterior_mean"] = float(sum(scores) / len(scores))
    return out


def exact_errors(
    operator: Operator,
    recon: Tensor,
    y: Tensor,
    prior: GaussianMixture,
    n_projections: int,
    generator: torch.Generator,
) -> dict[str, float]:
    """Distances of each measurement's samples to its exact posterior `prior.posterior(A, y)`.

    The floor is the distance between two independent exact sample sets of the same size
    (averaged over `FLOOR_REPEATS` sets: one pair varies by about 30%); the same projection
    directions serve every distance, so the numbers compare.
    """
    n = recon.shape[1]
    totals = dict.fromkeys(("mean", "weights", "sw", "floor"), 0.0)
    for j in range(recon.shape[0]):
        try:
            post = prior.posterior(operator, y[j].double())
        except InvalidArgumentError as err:
            raise InvalidArgumentError(f"the exact posterior of measurement {j}: {err}") from None
        x = recon[j].double()
        ref = post.sample(n, generator, dtype=F64)
        totals["mean"] += float((x.mean(0) - post.mean).norm())
        totals["weights"] += float((post.responsibilities(x).mean(0) - post.weights).abs().sum())
        totals["sw"] += _distance(x, ref, n_projections)
        pairs = [post.sample(n, generator, dtype=F64) for _ in range(FLOOR_REPEATS)]
        totals["floor"] += sum(_distance(o, ref, n_projections) for o in pairs) / FLOOR_REPEATS
    m = recon.shape[0]
    sw, floor = totals["sw"] / m, totals["floor"] / m
    return {
        "posterior_mean_error_exact": totals["mean"] / m,
        "weights_error_exact": totals["weights"] / m,
        "sliced_wasserstein_exact": sw,
        "sliced_wasserstein_exact_floor": floor,
        "sliced_wasserstein_exact_ratio": sw / floor if floor > 0 else float("inf"),
    }


def _distance(x: Tensor, y: Tensor, n_projections: int) -> float:
    """SW2 between two point sets along directions drawn from seed 0 (shared by all distances)."""
    return float(sliced_wasserstein(x, y, n_projections, torch.Generator().manual_seed(0)))
