"""Every posterior sampler against the exact posterior of a mixture prior (flowforge.testing).

Problem (`mixture_problem`): d = 16, a 3-component mixture, y through a 50% mask or a dense
(8, 16) Gaussian matrix with noise std 0.1; 1000 samples, 100 model evaluations. Errors: of the
sample mean (L2), of the component weights (L1) and the sliced W2 distance to exact samples.

What the bounds mean. The floor (two exact sample sets of 1000) is what a perfect sampler gets:
mask (mean 0.087, weights 0.022, SW 0.065), dense (0.096, 0.018, 0.092); ignoring y gives
mask (2.09, 0.61, 0.95), dense (3.13, 0.76, 1.00).
- `smc` is consistent (exact as particles grow): its bound is a multiple of the floor. With
  N particles its error is that of about N / 10 independent samples here (measured by the
  particle-count test below), so with 250 particles per population it sits at about
  sqrt(10) ~ 3 times the floor; the bounds are 3.5x (SW), 5x (mean) and 8x (weights): the
  weights error is heavy-tailed over seeds (seeds 2-5, both operators: 0.5-11x the floor with
  the int64 Brownian tree, 2.5-7.2x with the int32 one of 447ea31; at seed 2 now 4.8x and 5.1x).
- The other methods approximate p(y | x_t) (DPS by a point estimate, PiGDM by a Gaussian,
  DDNM/DDS/FlowChef by enforcing consistency, RED-diff by a point mass, PnP-Flow by a
  point estimate), so on a multimodal
  prior they are biased by an amount no sample size removes. Their bounds are the errors
  measured when they were written, plus 25%: deterministic seeds make the numbers exact
  up to rounding, so a regression fails (a wrong sign, coefficient or hook order moves them
  by far more) while the methods' own, documented bias passes. docs/inverse-problems.md lists
  the same numbers. Every method must also bring the samples closer to y than the prior does.
"""

from __future__ import annotations

import pytest

from flowforge.guidance import DDNM, DDS, DPS, SMC, FlowChef, PiGDM, PnPFlow, REDDiff
from flowforge.testing import mixture_problem

# (guidance factory, solver), and the measured errors (mean, weights, sw) per operator.
METHODS = {
    "dps": (lambda m: DPS(measurement=m, scale=1.0), "euler"),
    "pigdm": (lambda m: PiGDM(measurement=m), "euler"),
    "ddnm": (lambda m: DDNM(measurement=m), "ddim"),
    "dds": (lambda m: DDS(measurement=m), "ddim"),
    "flowchef": (lambda m: FlowChef(measurement=m, scale=1.0), "euler"),
    "red_diff": (lambda m: REDDiff(measurement=m), "euler"),
    "pnp_flow": (lambda m: PnPFlow(measurement=m), "euler"),
    "smc": (lambda m: SMC(measurement=m, particles=250), "reverse_sde"),
}
MEASURED = {
    ("dps", "mask"): (1.433, 0.479, 0.452),
    ("dps", "dense"): (2.709, 0.590, 0.851),
    ("pigdm", "mask"): (1.150, 0.437, 0.380),
    ("pigdm", "dense"): (1.039, 0.218, 0.376),
    ("ddnm", "mask"): (0.986, 0.551, 0.559),
    ("ddnm", "dense"): (1.935, 0.470, 0.672),
    ("dds", "mask"): (0.986, 0.551, 0.559),
    ("dds", "dense"): (1.983, 0.496, 0.688),
    ("flowchef", "mask"): (1.374, 0.671, 0.525),
    ("flowchef", "dense"): (1.739, 0.436, 0.600),
    ("red_diff", "mask"): (0.398, 0.180, 0.285),
    ("red_diff", "dense"): (3.914, 0.845, 1.291),
    ("pnp_flow", "mask"): (1.034, 0.543, 0.557),
    ("pnp_flow", "dense"): (3.703, 1.191, 1.214),
}
SMC_FLOOR_FACTORS = {"mean": 5.0, "weights": 8.0, "sw": 3.5}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_posterior_errors_are_within_their_bounds(problem, method, request):
    make, solver = METHODS[method]
    kind = request.node.callspec.params["problem"]
    x = problem.solve([make(problem.measurement)], n=1000, solver=solver)
    errors = problem.errors(x)
    if method == "smc":
        floor = problem.floor(1000)
        bounds = {k: SMC_FLOOR_FACTORS[k] * floor[k] for k in floor}
    else:
        measured = MEASURED[method, kind]
        bounds = {k: 1.25 * v for k, v in zip(("mean", "weights", "sw"), measured, strict=True)}
    for key, bound in bounds.items():
        assert errors[key] < bound, f"{method}, {kind}: {key} error {errors[key]:.4f} > {bound:.4f}"
    residual = lambda z: problem.measurement.residual(z).norm(dim=1).mean()
    assert residual(x) < 0.75 * residual(problem.solve([], n=1000))


@pytest.mark.parametrize("kind", ["mask", "dense"])
@pytest.mark.parametrize("solver", ["ddim", "euler", "heun", "rk4"])
def test_noiseless_ddnm_fits_the_measurement_exactly(kind, solver):
    """Noiseless DDNM projects the last data estimate onto {x : A x = y}; where the path ends at
    sigma = 0 the sample is its own estimate, so ||A x - y|| is rounding error with any solver."""
    problem = mixture_problem(kind, noise_std=0.0)
    x = problem.solve(
        [DDNM(measurement=problem.measurement)],
        n=200,
        solver=solver,
        nfe=24 if solver != "heun" else 23,
    )
    assert float(problem.measurement.residual(x).norm(dim=1).max()) < 1e-5


@pytest.mark.parametrize("kind", ["mask", "dense"])
def test_smc_error_falls_as_particles_grow(kind):
    """Eight populations of N = 16, 64, 256 particles (d = 8): the error of each population's
    estimate, averaged over the populations, falls with N, and at N = 256 it is within a small
    factor of the floor of N exact samples (about sqrt(N / N_eff) with N_eff ~ N / 10)."""
    problem = mixture_problem(kind, d=8, seed=5)
    populations = 8
    per_n = {}
    for n in (16, 64, 256):
        guidance = SMC(measurement=problem.measurement, particles=n)
        x = problem.solve([guidance], n=n * populations, solver="reverse_sde", seed=10)
        runs = [problem.errors(pop) for pop in x.reshape(populations, n, -1)]
        per_n[n] = {k: sum(r[k] for r in runs) / populations for k in runs[0]}
    for key in ("mean", "weights", "sw"):
        trend = [per_n[n][key] for n in (16, 64, 256)]
        assert trend[0] > trend[1] > trend[2], f"{key} error does not fall with N: {trend}"
    floor = problem.floor(256)
    for key, factor in SMC_FLOOR_FACTORS.items():
        assert per_n[256][key] < factor * floor[key], (key, per_n[256][key], floor[key])
