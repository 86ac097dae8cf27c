"""Gradient guidance is exact where its likelihood is: classifier, self-guidance, DPS, PiGDM."""

from __future__ import annotations

import pytest
import torch

import flowforge
from flowforge import registry
from flowforge.field import Dynamics, Prediction
from flowforge.guidance import DPS, Classifier, Measurement, PiGDM, SelfGuidance
from flowforge.guidance.score import add_score
from flowforge.metrics.sliced_wasserstein import sliced_wasserstein
from flowforge.operators import Dense, Mask, gaussian_matrix, random_mask
from flowforge.paths import CondOT
from flowforge.targets import GaussianMixture
from flowforge.testing import PosteriorProblem

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kind", ["velocity", "noise", "data", "score"])
def test_add_score_changes_the_implied_score_by_exactly_g(kind):
    path = registry.create("path", "vp_cosine")
    x, t = torch.randn(5, 3, generator=gen(0), dtype=F64), torch.linspace(0.1, 0.9, 5, dtype=F64)
    pred = Prediction(torch.randn(5, 3, generator=gen(1), dtype=F64), kind, x, t, path)
    g = torch.randn(5, 3, generator=gen(2), dtype=F64)
    torch.testing.assert_close(add_score(pred, g).score - pred.score, g)
    at_noise = Prediction(pred.value, kind, x, torch.zeros(5, dtype=F64), CondOT())
    if kind in ("velocity", "data"):  # x_t says nothing about the data at alpha = 0
        torch.testing.assert_close(add_score(at_noise, g).value, at_noise.value)


def test_noisy_classifier_guidance_samples_the_class_exactly():
    """With the exact time-aware classifier log p(k | x_t) of a mixture, guidance at scale 1 is
    Bayes' rule on scores, so the samples are those of component k alone."""
    path = CondOT()
    prior = GaussianMixture(
        means=[[-1.0, 0.0, 1.0], [1.5, 1.0, -0.5]], stds=[0.6, 0.4], weights=[0.7, 0.3]
    )
    component = GaussianMixture(means=[[1.5, 1.0, -0.5]], stds=0.4)

    def log_class_prob(x_t, t):  # log p(k = 1 | x_t) = log w_1 N_1(x_t) - log p_t(x_t)
        return (
            component.marginal_log_prob(x_t, t, path)
            + prior.weights[1].log()
            - prior.marginal_log_prob(x_t, t, path)
        )

    guide = Classifier(scale=1.0, on="state", log_likelihood=log_class_prob)
    x = flowforge.sample(
        prior.field(path),
        torch.randn(2000, 3, generator=gen(4), dtype=F64),
        path=path,
        prediction="velocity",
        solver="heun",
        nfe=99,
        guidance=guide,
    )
    ref, ref2 = component.sample(2000, gen(5), dtype=F64), component.sample(2000, gen(6), dtype=F64)
    floor = float(sliced_wasserstein(ref2, ref, 200, gen(0)))
    assert float(sliced_wasserstein(x, ref, 200, gen(0))) < 1.5 * floor
    assert float((x.mean(0) - component.means[0]).norm()) < 0.05


def _point(d: int):
    x = torch.randn(4, d, generator=gen(3), dtype=F64)
    return x, torch.tensor([0.2, 0.4, 0.6, 0.8], dtype=F64)


def _guided(prior, guidance, x, t):
    f = Dynamics(prior.field(CondOT()), CondOT(), "velocity", [guidance])
    with torch.enable_grad():
        return f(x, t).value


def test_gaussian_dps_is_classifier_guidance_by_the_plugged_in_likelihood():
    prior = GaussianMixture(means=torch.randn(2, 6, generator=gen(0), dtype=F64), stds=0.5)
    op = Dense(gaussian_matrix(3, 6, gen(1)), (6,), noise_std=0.3)
    y = op.simulate(prior.sample(1, gen(2), dtype=F64), gen(3))
    dps = DPS(measurement=Measurement(op, y), weighting="gaussian")
    classifier = Classifier(log_likelihood=lambda z, t: op.log_likelihood(z, y.expand(4, 3)))
    x, t = _point(6)
    torch.testing.assert_close(_guided(prior, dps, x, t), _guided(prior, classifier, x, t))


def test_squared_self_guidance_is_gaussian_dps_with_a_mask():
    prior = GaussianMixture(means=torch.randn(2, 6, generator=gen(0), dtype=F64), stds=0.5)
    mask = random_mask((6,), 0.5, gen(1))
    op = Mask(mask, (6,), noise_std=0.2)
    y = op.simulate(prior.sample(1, gen(2), dtype=F64), gen(3))
    observed = op.adjoint(y)  # y at the observed entries, 0 elsewhere
    dps = DPS(measurement=Measurement(op, y), weighting="gaussian")
    tsdiff = SelfGuidance(scale=1 / (2 * 0.2**2), observed=observed, mask=mask)
    x, t = _point(6)
    torch.testing.assert_close(_guided(prior, dps, x, t), _guided(prior, tsdiff, x, t))


@pytest.mark.parametrize("operator", ["mask", "dense"])
@pytest.mark.parametrize(
    ("path", "prediction", "solver", "nfe"),
    [("cond_ot", "velocity", "euler", 100), ("vp_cosine", "noise", "heun", 99)],
)
def test_pigdm_is_exact_for_an_isotropic_gaussian_prior(operator, path, prediction, solver, nfe):
    """For a prior N(m, v I), y | x_t is exactly N(A D(x_t), r_t^2 A A^T + sigma_y^2 I) with
    PiGDM's r_t^2 (prior_var = v), so its guided score is the posterior's: the samples match
    exact posterior samples up to the sampling floor and the solver's error."""
    d, v = 16, 0.5
    prior = GaussianMixture(means=torch.full((1, d), 0.3, dtype=F64), stds=v**0.5)
    g = gen(0)
    if operator == "mask":
        op = Mask(random_mask((d,), 0.5, g), (d,), noise_std=0.1)
    else:
        op = Dense(gaussian_matrix(d // 2, d, g), (d,), noise_std=0.1)
    y = op.simulate(prior.sample(1, g, dtype=F64), g)
    problem = PosteriorProblem(prior, op, y, prior.posterior(op, y))
    t_span = None if prediction == "velocity" else (1e-3, 1 - 1e-3)
    x = problem.solve(
        [PiGDM(measurement=problem.measurement, prior_var=v)],
        n=2000,
        solver=solver,
        nfe=nfe,
        path=path,
        prediction=prediction,
        t_span=t_span,
    )
    errors, floor = problem.errors(x), problem.floor(2000)
    assert errors["sw"] < 1.5 * floor["sw"], (errors, floor)
    assert errors["mean"] < 2.0 * floor["mean"], (errors, floor)
