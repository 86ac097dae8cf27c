"""The measurement's linear algebra: exact through an SVD, the same by conjugate gradients."""

from __future__ import annotations

import pytest
import torch

from flowforge.errors import InvalidArgumentError
from flowforge.guidance import DDNM, DPS, SMC, Classifier, Measurement, PiGDM, SelfGuidance
from flowforge.guidance.linalg import conjugate_gradient
from flowforge.operators import Compose, Dense, gaussian_matrix
from flowforge.paths import CondOT
from flowforge.targets import GaussianMixture

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def pair(noise_std: float) -> tuple[Measurement, Measurement]:
    """The same dense (5, 8) measurement through its SVD and through conjugate gradients
    (wrapped in a composition, which has no SVD)."""
    weight = gaussian_matrix(5, 8, gen(0))
    y = torch.randn(1, 5, generator=gen(1), dtype=F64)
    svd = Measurement(Dense(weight, (8,), noise_std=noise_std), y)
    cg = Measurement(Compose(Dense(weight, (8,)), noise_std=noise_std), y, cg_iters=40)
    return svd, cg


def test_conjugate_gradients_solve_spd_systems_per_sample():
    a = torch.randn(3, 6, 6, generator=gen(0), dtype=F64)
    spd = a @ a.mT + 0.1 * torch.eye(6, dtype=F64)
    b = torch.randn(3, 6, generator=gen(1), dtype=F64)
    x = conjugate_gradient(lambda v: (spd @ v[..., None])[..., 0], b, torch.zeros_like(b), 12)
    torch.testing.assert_close(x, torch.linalg.solve(spd, b))


@pytest.mark.parametrize("noise_std", [0.0, 0.3])
def test_svd_and_cg_agree(noise_std):
    svd, cg = pair(noise_std)
    x = torch.randn(4, 8, generator=gen(2), dtype=F64)
    var = torch.tensor([0.1, 0.5, 1.0, 2.0], dtype=F64)
    torch.testing.assert_close(cg.pinv(svd.residual(x)), svd.pinv(svd.residual(x)))
    torch.testing.assert_close(cg.pulled_residual(x, var), svd.pulled_residual(x, var))
    if noise_std > 0:
        same_var = torch.full((4,), 0.5, dtype=F64)
        diff = cg.log_likelihood(x, same_var) - svd.log_likelihood(x, same_var)
        torch.testing.assert_close(diff, diff[:1].expand(4))  # equal up to a shared constant


def test_pulled_residual_is_the_likelihood_gradient():
    svd, _ = pair(0.3)
    x = torch.randn(4, 8, generator=gen(2), dtype=F64, requires_grad=True)
    var = torch.full((4,), 0.7, dtype=F64)
    (grad,) = torch.autograd.grad(svd.log_likelihood(x, var).sum(), x)
    torch.testing.assert_close(svd.pulled_residual(x.detach(), var), grad)


def test_pigdm_without_an_svd_matches_pigdm_with_one():
    from flowforge.field import Dynamics

    prior = GaussianMixture(means=torch.randn(2, 8, generator=gen(3), dtype=F64), stds=0.5)
    x, t = torch.randn(4, 8, generator=gen(4), dtype=F64), torch.full((4,), 0.6, dtype=F64)
    out = []
    for m in pair(0.2):
        f = Dynamics(prior.field(CondOT()), CondOT(), "velocity", [PiGDM(measurement=m)])
        with torch.enable_grad():
            out.append(f(x, t).value)
    torch.testing.assert_close(out[1], out[0])


def test_measurement_and_guidance_errors_say_what_to_do():
    svd = pair(0.0)[0]
    noisy_cg = pair(0.3)[1]
    with pytest.raises(InvalidArgumentError, match="Operator"):
        Measurement("mask", torch.zeros(1, 5))
    with pytest.raises(InvalidArgumentError, match="noise_std > 0"):
        svd.log_likelihood(torch.zeros(2, 8, dtype=F64), torch.ones(2, dtype=F64))
    with pytest.raises(InvalidArgumentError, match="use dds"):
        DDNM(measurement=noisy_cg).correct(
            torch.zeros(2, 8, dtype=F64), torch.ones(2), noisy_cg, None
        )
    with pytest.raises(InvalidArgumentError, match="normalized"):
        DPS(measurement=svd, weighting="gaussian").on_prediction(None, None)
    with pytest.raises(InvalidArgumentError, match=r"mask\.bool"):
        SelfGuidance(observed=torch.zeros(1, 2), mask=torch.ones(2))
    assert DPS().needs == ("measurement",) and DPS().with_measurement(svd).needs == ()
    assert Classifier().needs == ("log_likelihood",)
    smc = SMC(measurement=pair(0.3)[0], particles=3)
    with pytest.raises(InvalidArgumentError, match="multiple of particles"):
        smc.on_population(torch.zeros(4, 8), torch.zeros(4), torch.ones(4), None)
