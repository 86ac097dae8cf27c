"""Regression targets agree with `path.convert`, and the exact prediction minimises each loss."""

from __future__ import annotations

import pytest
import torch

from flowforge import registry
from flowforge.paths import PREDICTIONS
from flowforge.targets import GaussianMixture
from flowforge.training import regression_loss, regression_target

GM = GaussianMixture(means=[[-1.5, 0.0], [1.0, 1.0]], stds=[0.3, 0.5], weights=[0.4, 0.6])
PATHS = ["cond_ot", "vp_cosine", "vp_linear", "ve", "edm"]


def _batch(path, n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x_1 = GM.sample(n, generator=gen, dtype=torch.float64)
    x_0 = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    t = 0.05 + 0.9 * torch.rand(n, generator=gen, dtype=torch.float64)
    return path.sample(x_0, x_1, t)


@pytest.mark.parametrize("path_name", PATHS)
@pytest.mark.parametrize("source", PREDICTIONS)
def test_targets_of_all_kinds_convert_into_each_other(path_name, source):
    path = registry.create("path", path_name)
    s = _batch(path, 64)
    for target in PREDICTIONS:
        converted = path.convert(regression_target(s, path, source), source, target, s.x_t, s.t)
        torch.testing.assert_close(
            converted, regression_target(s, path, target), rtol=1e-7, atol=1e-7
        )


@pytest.mark.parametrize("path_name", ["cond_ot", "vp_cosine", "ve"])
@pytest.mark.parametrize("kind", PREDICTIONS)
def test_exact_prediction_minimises_the_loss(path_name, kind):
    """The exact prediction is E[target | x_t]: the loss's slope along any perturbation h,
    2 E[(exact - target) . h], is zero up to Monte Carlo error; a biased model's is not."""
    path = registry.create("path", path_name)
    s = _batch(path, 200_000, seed=1)
    target = regression_target(s, path, kind)
    exact = GM.predict(s.x_t, s.t, path, kind)
    h = torch.sin(s.x_t) + s.t[:, None]  # an arbitrary smooth function of (x_t, t)

    def z_score(pred):
        g = ((pred - target) * h).sum(1)
        return (g.mean() / (g.std() / len(g) ** 0.5)).item()

    assert abs(z_score(exact)) < 4
    assert abs(z_score(exact + 0.2 * target.std() * h)) > 10
    model = lambda x, t: GM.predict(x, t, path, kind)
    biased = lambda x, t: model(x, t) + 0.2 * target.std() * torch.sin(x)
    assert regression_loss(model, path, kind, s.x_0, s.x_1, s.t) < regression_loss(
        biased, path, kind, s.x_0, s.x_1, s.t
    )


def test_loss_is_a_mean_squared_error_per_coordinate():
    path = registry.create("path", "cond_ot")
    x_0, x_1, t = torch.zeros(3, 2), torch.ones(3, 2), torch.full((3,), 0.5)
    zero = lambda x, t: torch.zeros_like(x)
    # velocity target is x_1 - x_0 = 1 everywhere
    assert regression_loss(zero, path, "velocity", x_0, x_1, t).item() == pytest.approx(1.0)
