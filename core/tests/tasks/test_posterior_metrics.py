"""The inverse-problem metrics on cases with known answers, and the model-space measurement."""

from __future__ import annotations

import math

import pytest
import torch

from flowforge import registry
from flowforge.data.standardize import Standardizer
from flowforge.operators import Dense, Rescaled
from flowforge.tasks.model_space import to_model_space
from flowforge.tasks.posterior_metrics import (
    consistency,
    exact_errors,
    is_image,
    posterior_summary,
    psnr,
    truth_errors,
)
from flowforge.testing import mixture_problem

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_residuals_are_the_norms_of_a_x_minus_y():
    op = registry.get("operator", "identity").build({"noise_std": 0.5})
    y = torch.zeros(2, 4)
    recon = torch.full((2, 3, 4), 2.0)  # every sample at distance sqrt(4 * 4) = 4 from y
    mean, _ = posterior_summary(recon)
    out = consistency(op, recon, mean, y)
    assert out["residual"] == pytest.approx(4.0)
    assert out["residual_posterior_mean"] == pytest.approx(4.0)
    assert out["residual_noise_level"] == pytest.approx(0.5 * math.sqrt(4))


def test_summary_is_the_sample_mean_and_unbiased_std():
    recon = torch.randn(3, 50, 2, 5, generator=gen(0))
    mean, std = posterior_summary(recon)
    torch.testing.assert_close(mean, recon.mean(1))
    torch.testing.assert_close(std, recon.std(1, correction=1))
    assert posterior_summary(recon[:, :1])[1].abs().max() == 0  # one sample: no spread


def test_psnr_rmse_and_error_against_the_truth():
    op = registry.get("operator", "identity").build({})
    truth = torch.zeros(2, 4)
    mean = torch.tensor([[0.1, 0.1, 0.1, 0.1], [0.2, 0.0, 0.0, 0.0]])
    out = truth_errors(op, mean, truth, truth, data_range=2.0, images=False)
    assert out["error_posterior_mean"] == pytest.approx((0.2 + 0.2) / 2)
    assert out["rmse_posterior_mean"] == pytest.approx((0.1 + 0.1) / 2)
    assert out["psnr_posterior_mean"] == pytest.approx(10 * math.log10(4 / 0.01), rel=1e-6)
    assert out["residual_truth"] == 0.0 and "ssim_posterior_mean" not in out
    assert psnr(torch.tensor([0.0]), 1.0).item() == math.inf


def test_ssim_of_identical_images_is_one_and_drops_with_noise():
    pytest.importorskip("skimage")
    op = registry.get("operator", "identity").build({})
    truth = torch.rand(2, 1, 8, 8, generator=gen(1))
    same = truth_errors(op, truth, truth, truth, data_range=1.0, images=True)
    assert same["ssim_posterior_mean"] == pytest.approx(1.0)
    noisy = truth + 0.3 * torch.randn(truth.shape, generator=gen(2))
    assert truth_errors(op, noisy, truth, truth, 1.0, True)["ssim_posterior_mean"] < 0.8


def test_image_detection_follows_ssim_window():
    assert is_image((1, 8, 8)) and is_image((3, 32, 32))
    assert not is_image((2,)) and not is_image((1, 4, 4)) and not is_image((8, 8))


def test_exact_posterior_samples_score_at_the_floor_and_the_prior_does_not():
    problem = mixture_problem("mask", d=8)
    y = problem.y.float()
    exact = problem.posterior.sample(2000, gen(3), dtype=F64)[None].float()
    good = exact_errors(problem.operator, exact, y, problem.prior, 200, gen(4))
    # One exact sample set against another: about the floor (one pair varies by about 30%).
    assert 0.5 < good["sliced_wasserstein_exact_ratio"] < 2.0
    assert good["posterior_mean_error_exact"] < 0.1 and good["weights_error_exact"] < 0.03
    prior = problem.prior.sample(2000, gen(5))[None]
    bad = exact_errors(problem.operator, prior, y, problem.prior, 200, gen(4))
    assert bad["sliced_wasserstein_exact"] > 3 * good["sliced_wasserstein_exact"]
    assert bad["posterior_mean_error_exact"] > 1.0


@pytest.mark.parametrize("name", ["mask", "dense", "downsample", "identity"])
def test_model_space_operator_measures_the_decoded_signal(name):
    shape = (1, 4, 4)
    op = registry.get("operator", name).build({"noise_std": 0.1}, data_shape=shape)
    x = torch.randn(5, *shape, generator=gen(6))
    st = Standardizer(
        torch.randn(shape, generator=gen(7)), 0.5 + torch.rand(shape, generator=gen(8))
    )
    y = op.forward(x.double()).float()
    for limit, kind in ((1024, Dense), (0, Rescaled)):
        op_z, y_z = to_model_space(op, y, st, shape, dense_limit=limit)
        assert isinstance(op_z, kind) and op_z.noise_std == 0.1
        z = st.encode(x).double()
        torch.testing.assert_close(
            op_z.forward(z).reshape(5, -1), y_z.double().reshape(5, -1), rtol=1e-5, atol=1e-5
        )


def test_rescaled_adjoint_is_exact():
    shape = (2, 4, 4)
    op = registry.get("operator", "blur").build({"std": 1.0}, data_shape=shape)
    scaled = Rescaled(op, torch.rand(shape, generator=gen(9)) + 0.5)
    x = torch.randn(3, *shape, generator=gen(10), dtype=F64)
    y = torch.randn(scaled.forward(x).shape, generator=gen(11), dtype=F64)
    lhs = (scaled.forward(x) * y).flatten(1).sum(1)
    rhs = (x * scaled.adjoint(y)).flatten(1).sum(1)
    torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-12)
    assert scaled.forward(x.float()).dtype == torch.float32
