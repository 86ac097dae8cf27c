"""Posterior sampling benchmark: flowforge's posterior samplers and deepinv's, on exact posteriors.

Protocol. Three mixture-prior inverse problems (`flowforge.testing.mixture_problem`, d = 16, a
3-component Gaussian mixture whose components differ mostly in the null space of A, weights
0.5/0.3/0.2, stds 0.4-0.7; one measurement, seed 1, noise std 0.1): "mask" (inpainting, 50% of
the coordinates observed), "downsample" (4x super-resolution: means of blocks of 4, 4
measurements) and "dense" (a Gaussian (8, 16) matrix). Each sampler draws 1000 samples of
p(x | y) with the exact model of the prior (float64) and is scored against the exact posterior
(`GaussianMixture.posterior`): the L2 error of the sample mean, the L1 error of the component
weights (mean responsibility of the samples minus the exact weights) and the sliced W2 distance
(200 directions) to 1000 exact posterior samples. The floor is the same errors for exact samples
(mean of 4 draws of 1000): what a perfect sampler gets.

NFE is the model-evaluation budget of one trajectory (solver steps; for smc, of one particle);
`evals` counts the model evaluations actually made per returned sample: smc adds the final
potential, and "smc x4" runs 4000 particles (4 populations of 1000) and returns 1000 of them
(a random subset of the equally weighted particles), so it spends 4 (NFE + 1) per sample.
`bwd` marks methods that also backpropagate through the model once per evaluation. Wall time
is that of the sampling call alone, one process, `--threads` torch threads. smc's error varies
by about +-40% with the sampling seed, so its rows average 5 seeds (SW2: mean, and the largest);
the other rows average 3 seeds (their error is mostly bias, but a few percent is seed noise).

flowforge: every registered posterior method with its tuned hyperparameters (TUNED; `--tune`
repeats the search), on cond_ot with the exact velocity: dps, pigdm, ddnm, dds, red_diff,
flowchef, pnp_flow (one noise draw per step, so its evaluations are its NFE), smc (untuned
defaults: twisted proposal, prior_var 1, reverse_sde), and the unguided
prior (what ignoring y gets).

deepinv (pip `deepinv==0.5.0`, run through its own API): `DPS` (on its VP SDE, with its DDPM
ancestral solver or Euler-Maruyama, one denoiser call per step), `PosteriorDiffusion` with
`PiGDMDataFidelity` (the same SDE and solvers) and `DiffPIR`, each tuned the same way, all
given the same exact prior as a `deepinv.models.Denoiser`: `D(x, sigma) = E[u | u + sigma n =
x]`. deepinv's samplers work on images in [0, 1] (they clip denoised estimates to that range
and map it to [-1, 1]), so the problem is posed to them in the affine coordinates
`u = 1/2 + x / (2c)`, `c` = max over components and coordinates of |mean| + 4 std: the prior
becomes the mixture of the mapped components, `y_u = A 1/2 + y / (2c)` with noise std
`0.1 / (2c)`, A given by its SVD (`DecomposablePhysics`, so proximal steps and PiGDM's inverse
are exact), and the samples are mapped back before scoring. The map is exact: the posterior in
u is the image of the posterior in x.

Tuning (`--tune`): for each problem, two pilot measurements of the same prior and operator
(y of other draws of x, seeds 2 and 3: held-out measurements, as a user would tune), 500
samples at NFE 50, every combination of each method's grid (GRIDS); the least sliced W2
averaged over the pilots wins. TUNED holds the result of the last search.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/guidance.py     # all, writes guidance.json
    .venv/bin/python benchmarks/guidance.py --problems mask --nfe 50 --no-deepinv  # a quick look
    .venv/bin/python benchmarks/guidance.py --tune --no-run       # redo the hyperparameter search
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from _common import Counted, markdown
from torch import Tensor

import flowforge
from flowforge.errors import FlowforgeError, MissingDependencyError
from flowforge.guidance import (
    DDNM,
    DDS,
    DPS,
    SMC,
    FlowChef,
    Measurement,
    PiGDM,
    PnPFlow,
    REDDiff,
)
from flowforge.paths import CondOT
from flowforge.targets import GaussianMixture
from flowforge.testing.posterior import PosteriorProblem, mixture_problem

F64 = torch.float64
PROBLEMS = ("mask", "downsample", "dense")
NFES = (20, 50, 100)
D, SAMPLES, MEASUREMENT_SEED, SAMPLE_SEED = 16, 1000, 1, 2
# Sampling seeds of every row but smc's: the same for both libraries.
SAMPLE_SEEDS = (2, 3, 4)
PILOT_SEEDS, TUNE_NFE, TUNE_SAMPLES = (2, 3), 50, 500
# smc's error varies by about +-40% from one sampling seed to the next: its rows average these.
SMC_SEEDS = (2, 3, 4, 5, 6)
PATH = CondOT()

# Hyperparameter grids searched by --tune ("solver" picks the flowforge solver).
GRIDS: dict[str, dict[str, list]] = {
    "dps": {
        "scale": [0.03, 0.1, 0.3, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0],
        "weighting": ["normalized", "gaussian"],
        "solver": ["euler", "reverse_sde"],
    },
    "pigdm": {
        "scale": [0.25, 0.5, 1.0],
        "prior_var": [0.05, 0.1, 0.25, 1.0],
        "solver": ["euler", "reverse_sde"],
    },
    "dds": {"gamma": [0.0, 1.0, 10.0]},
    "red_diff": {"lam": [0.01, 0.05, 0.25], "lr": [0.05, 0.2]},
    "pnp_flow": {"lr": [0.1, 0.3, 1.0, 3.0, 10.0], "exponent": [0.0, 0.5, 1.0]},
    "flowchef": {"scale": [1.0, 3.0, 10.0, 30.0]},
    "deepinv.dps": {
        "weight": [10.0, 20.0, 30.0, 50.0, 100.0, 200.0, 300.0, 500.0, 1000.0, 3000.0],
        "solver": ["ddpm", "euler"],
    },
    "deepinv.pigdm": {"weight": [1.0, 3.0, 10.0, 30.0, 100.0], "solver": ["ddpm", "euler"]},
    "deepinv.diffpir": {"lambda_": [0.1, 0.3, 1.0, 7.0, 30.0], "zeta": [0.1, 0.5, 1.0]},
}
# The search's result (benchmarks/guidance.py --tune: pilot measurements, NFE 50, 500 samples).
TUNED: dict[str, dict[str, dict]] = {
    "mask": {
        "dps": {"scale": 3.0, "weighting": "normalized", "solver": "reverse_sde"},
        "pigdm": {"scale": 0.5, "prior_var": 0.1, "solver": "reverse_sde"},
        "dds": {"gamma": 0.0},
        "red_diff": {"lam": 0.01, "lr": 0.2},
        "pnp_flow": {"lr": 3.0, "exponent": 0.5},
        "flowchef": {"scale": 3.0},
        "deepinv.dps": {"weight": 200.0, "solver": "ddpm"},
        "deepinv.pigdm": {"weight": 10.0, "solver": "ddpm"},
        "deepinv.diffpir": {"lambda_": 0.1, "zeta": 1.0},
    },
    "downsample": {
        "dps": {"scale": 5.0, "weighting": "normalized", "solver": "reverse_sde"},
        "pigdm": {"scale": 1.0, "prior_var": 0.25, "solver": "reverse_sde"},
        "dds": {"gamma": 0.0},
        "red_diff": {"lam": 0.05, "lr": 0.05},
        "pnp_flow": {"lr": 10.0, "exponent": 0.5},
        "flowchef": {"scale": 10.0},
        "deepinv.dps": {"weight": 300.0, "solver": "ddpm"},
        "deepinv.pigdm": {"weight": 10.0, "solver": "euler"},
        "deepinv.diffpir": {"lambda_": 1.0, "zeta": 1.0},
    },
    "dense": {
        "dps": {"scale": 1.0, "weighting": "normalized", "solver": "reverse_sde"},
        "pigdm": {"scale": 0.5, "prior_var": 0.25, "solver": "reverse_sde"},
        "dds": {"gamma": 0.0},
        "red_diff": {"lam": 0.25, "lr": 0.2},
        "pnp_flow": {"lr": 1.0, "exponent": 0.5},
        "flowchef": {"scale": 1.0},
        "deepinv.dps": {"weight": 20.0, "solver": "ddpm"},
        "deepinv.pigdm": {"weight": 3.0, "solver": "ddpm"},
        "deepinv.diffpir": {"lambda_": 1.0, "zeta": 1.0},
    },
}


@dataclass(frozen=True)
class Method:
    """A posterior sampler: `run(problem, nfe, n, seed, params) -> (samples (n, d), evals)`,
    evals = model evaluations per returned sample; its rows average over `seeds`."""

    name: str
    library: str
    run: Callable[..., tuple[Tensor, float]]
    backward: bool
    defaults: dict = field(default_factory=dict)
    seeds: tuple[int, ...] = SAMPLE_SEEDS


# ---------------------------------------------------------------------------------- flowforge


def ff_solve(problem, guidance, solver, nfe, n, seed, per_sample=1) -> tuple[Tensor, float]:
    """`n` samples of the exact prior model steered by `guidance`, and the model evaluations
    per returned sample. `per_sample` > 1 (particle methods): solve `per_sample * n` particles
    and return a random subset of `n` of them (equally weighted after SMC's last resampling)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(per_sample * n, problem.prior.dim, generator=g, dtype=F64)
    net = Counted(problem.prior.field(PATH, "velocity"))
    x = flowforge.sample(
        net, noise, path=PATH, prediction="velocity", solver=solver, nfe=nfe,
        guidance=guidance, generator=g,
    )  # fmt: skip
    if per_sample > 1:
        x = x[torch.randperm(x.shape[0], generator=g)[:n]]
    return x, net.calls * per_sample


def ff_method(
    name: str,
    make: Callable[..., list],
    solver: str,
    backward: bool,
    per_sample: int = 1,
    seeds: tuple[int, ...] = SAMPLE_SEEDS,
    **defaults,
) -> Method:
    """A flowforge method: `make(measurement, **params)` gives the guidance list."""

    def run(problem, nfe, n, seed, params):
        params = {**defaults, **params}
        chosen = params.pop("solver", solver)
        guidance = make(problem.measurement, **params)
        return ff_solve(problem, guidance, chosen, nfe, n, seed, per_sample)

    return Method(name, "flowforge", run, backward, defaults, seeds)


def smc(m: Measurement, **params) -> list:
    return [SMC(measurement=m, **params)]


FLOWFORGE = [
    ff_method("prior (unguided)", lambda m: [], "euler", False),
    ff_method("dps", lambda m, **p: [DPS(measurement=m, **p)], "euler", True),
    ff_method("pigdm", lambda m, **p: [PiGDM(measurement=m, **p)], "euler", True),
    ff_method("ddnm", lambda m: [DDNM(measurement=m)], "ddim", False),
    ff_method("dds", lambda m, **p: [DDS(measurement=m, **p)], "ddim", False),
    ff_method("red_diff", lambda m, **p: [REDDiff(measurement=m, **p)], "euler", False),
    ff_method("flowchef", lambda m, **p: [FlowChef(measurement=m, **p)], "euler", False),
    ff_method("pnp_flow", lambda m, **p: [PnPFlow(measurement=m, **p)], "euler", False),
    # One population of the whole batch: one particle per returned sample.
    ff_method("smc", smc, "reverse_sde", True, seeds=SMC_SEEDS),
    # Four populations of 1000 particles, 1000 of the 4000 returned: 4 particles per sample.
    ff_method("smc x4", smc, "reverse_sde", True, per_sample=4, seeds=SMC_SEEDS, particles=1000),
]


# ------------------------------------------------------------------------------------ deepinv


def import_deepinv():
    """deepinv, or an error saying how `make bench` installs it."""
    try:
        import deepinv
    except ImportError as err:
        raise MissingDependencyError(
            "deepinv",
            "benchmarks/guidance.py (deepinv side by side)",
            "install it as `make bench` does (requirements-bench.txt: deepinv with --no-deps, "
            "plus torchvision, h5py and natsort), or pass --no-deepinv",
        ) from err
    return deepinv


class InDeepinv:
    """A `PosteriorProblem` posed in deepinv's conventions: signals `u = 1/2 + x / (2c)` in
    [0, 1], the exact prior as a deepinv denoiser, `A` as a `DecomposablePhysics` (its SVD)."""

    def __init__(self, problem: PosteriorProblem):
        dinv = import_deepinv()
        prior, d = problem.prior, problem.prior.dim
        self.c = float((prior.means.abs() + 4 * prior.stds).max())
        self.prior = GaussianMixture(
            0.5 + prior.means / (2 * self.c), prior.stds / (2 * self.c), prior.weights
        )
        a = problem.operator.matrix((d,)).to(F64)
        m = a.shape[0]
        u, s, vh = torch.linalg.svd(a, full_matrices=True)
        spectrum = torch.zeros(d, dtype=F64)
        spectrum[:m] = s
        pad = d - m
        self.physics = dinv.physics.DecomposablePhysics(
            U=lambda z: z[:, :m] @ u.T.to(z.dtype),
            U_adjoint=lambda y: torch.nn.functional.pad(y @ u.to(y.dtype), (0, pad)),
            V=lambda z: z @ vh.to(z.dtype),
            V_adjoint=lambda x: x @ vh.T.to(x.dtype),
            mask=spectrum,
            noise_model=dinv.physics.GaussianNoise(sigma=problem.operator.noise_std / (2 * self.c)),
        )
        self.y = a @ torch.full((d,), 0.5, dtype=F64) + problem.y[0] / (2 * self.c)
        self.denoiser = exact_denoiser_class()(self.prior)
        self.dim = d

    def to_x(self, u: Tensor) -> Tensor:
        return (2 * self.c * (u.to(F64) - 0.5)).reshape(u.shape[0], -1)


@functools.cache
def exact_denoiser_class() -> type:
    """`ExactDenoiser`: a `deepinv.models.Denoiser` subclass, defined once deepinv is imported."""
    dinv = import_deepinv()

    class ExactDenoiser(dinv.models.Denoiser):
        """`D(x, sigma) = E[u | u + sigma n = x]` for a `GaussianMixture` prior on u, exactly.

        The variance-exploding state `x` at noise `sigma` is the cond_ot state `x / (1 + sigma)`
        at `t = 1 / (1 + sigma)`, whose exact data prediction the mixture gives. Computed in
        float64 whatever the input's dtype (deepinv feeds float32); differentiable in `x`.
        `calls` counts evaluations.
        """

        def __init__(self, prior: GaussianMixture):
            super().__init__()
            self.prior, self.calls = prior, 0

        def forward(self, x: Tensor, sigma: float | Tensor, **kwargs) -> Tensor:
            self.calls += 1
            flat = x.to(F64).reshape(x.shape[0], -1)
            sigma = torch.as_tensor(sigma, dtype=F64, device=x.device).reshape(-1)
            t = (1.0 / (1.0 + sigma)).expand(flat.shape[0])
            out = self.prior.predict(flat * t[:, None], t, PATH, "data")
            return out.reshape(x.shape).to(x.dtype)

    return ExactDenoiser


_DEEPINV_CACHE: dict[int, InDeepinv] = {}


def in_deepinv(problem: PosteriorProblem) -> InDeepinv:
    key = id(problem)
    if key not in _DEEPINV_CACHE:
        _DEEPINV_CACHE[key] = InDeepinv(problem)
    return _DEEPINV_CACHE[key]


def deepinv_dps(problem, nfe, n, seed, params):
    """deepinv.sampling.DPS with its `solver` ("ddpm", its default, or "euler"), `nfe` steps
    (num_steps = nfe + 1 times, from t = 1 to 0, or to 0.001 for euler, which then adds one
    denoising call)."""
    dinv, p = import_deepinv(), in_deepinv(problem)
    p.denoiser.calls = 0
    sampler = dinv.sampling.DPS(
        p.denoiser, solver=params.get("solver", "ddpm"), num_steps=nfe + 1,
        weight=params["weight"], dtype=F64, rng=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    u = sampler(p.y.expand(n, -1), p.physics, x_init=(n, p.dim), seed=seed)
    return p.to_x(u), p.denoiser.calls


def deepinv_pigdm(problem, nfe, n, seed, params):
    """PosteriorDiffusion with PiGDMDataFidelity on the VP SDE (alpha = 1), `nfe` steps of
    DDPMSolver (t = 1 to 0) or EulerSolver (t = 1 to 0.001, plus one denoising call)."""
    dinv, p = import_deepinv(), in_deepinv(problem)
    p.denoiser.calls = 0
    s = dinv.sampling
    rng = torch.Generator().manual_seed(seed)
    if params.get("solver", "ddpm") == "ddpm":
        solver = s.DDPMSolver(timesteps=torch.linspace(1, 0, nfe + 1, dtype=F64), rng=rng)
    else:
        solver = s.EulerSolver(timesteps=torch.linspace(1, 1e-3, nfe + 1, dtype=F64), rng=rng)
    sampler = s.PosteriorDiffusion(
        data_fidelity=s.PiGDMDataFidelity(weight=params["weight"]),
        denoiser=p.denoiser,
        sde=s.VariancePreservingDiffusion(alpha=1.0, dtype=F64),
        solver=solver,
        dtype=F64,
    )
    u = sampler(p.y.expand(n, -1), p.physics, x_init=(n, p.dim), seed=seed)
    return p.to_x(u), p.denoiser.calls


def deepinv_diffpir(problem, nfe, n, seed, params):
    """deepinv.sampling.DiffPIR with the L2 data fidelity, `max_iter = nfe` iterations."""
    dinv, p = import_deepinv(), in_deepinv(problem)
    p.denoiser.calls = 0
    sampler = dinv.sampling.DiffPIR(
        p.denoiser, dinv.optim.data_fidelity.L2(), sigma=p.physics.noise_model.sigma,
        max_iter=nfe, zeta=params["zeta"], lambda_=params["lambda_"],
    )  # fmt: skip
    torch.manual_seed(seed)  # DiffPIR draws from torch's global generator
    u = sampler(p.y.expand(n, -1), p.physics)
    return p.to_x(u), p.denoiser.calls


DEEPINV = [
    Method("deepinv.dps", "deepinv", deepinv_dps, True, {"weight": 1.0}),
    Method("deepinv.pigdm", "deepinv", deepinv_pigdm, True, {"weight": 1.0}),
    Method("deepinv.diffpir", "deepinv", deepinv_diffpir, False, {"lambda_": 7.0, "zeta": 0.1}),
]


# ---------------------------------------------------------------------------------- protocol


def evaluate(method, problem, nfe, n, seeds, params) -> dict:
    """Run one sampler once per seed and score it: errors and wall time averaged over the
    seeds (SW2 also per seed); a run that fails or returns non-finite samples scores inf."""
    runs = []
    for seed in seeds:
        start = time.perf_counter()
        try:
            x, evals = method.run(problem, nfe, n, seed, dict(params))
        except FlowforgeError as err:
            print(f"  ({method.name} failed: {err})", flush=True)
            return {"error": str(err).split("\n")[0], "mean": math.inf, "weights": math.inf,
                    "sw": math.inf, "sw_runs": [], "wall_s": math.nan, "evals": None}  # fmt: skip
        wall = time.perf_counter() - start
        if bool(torch.isfinite(x).all()):
            errors = problem.errors(x)
        else:
            errors = {"mean": math.inf, "weights": math.inf, "sw": math.inf}
        runs.append({**errors, "wall_s": wall, "evals": evals})
    out = {k: sum(r[k] for r in runs) / len(runs) for k in ("mean", "weights", "sw", "wall_s")}
    return {**out, "sw_runs": [r["sw"] for r in runs], "evals": runs[0]["evals"]}


def pilot(problem: PosteriorProblem, seed: int) -> PosteriorProblem:
    """The same prior and operator with another measurement: y of another draw of x."""
    g = torch.Generator().manual_seed(seed)
    op, prior = problem.operator, problem.prior
    y = op.simulate(prior.sample(1, g, dtype=F64), g)
    return PosteriorProblem(prior, op, y, prior.posterior(op, y))


def tune(methods, kinds) -> dict[str, dict[str, dict]]:
    """Per problem and method, the grid point with the least sliced W2 averaged over the pilot
    measurements (module docstring)."""
    out = {}
    for kind in kinds:
        problem = mixture_problem(kind, d=D, seed=MEASUREMENT_SEED)
        pilots = [pilot(problem, seed) for seed in PILOT_SEEDS]
        out[kind] = {}
        for method in methods:
            grid = GRIDS.get(method.name)
            if not grid:
                continue
            scores = []
            for values in itertools.product(*grid.values()):
                params = dict(zip(grid, values, strict=True))
                sw = [
                    evaluate(method, p, TUNE_NFE, TUNE_SAMPLES, (SAMPLE_SEED,), params)["sw"]
                    for p in pilots
                ]
                scores.append((sum(sw) / len(sw), params))
                print(f"  tune {kind} {method.name} {params}: SW {scores[-1][0]:.3f}", flush=True)
            out[kind][method.name] = min(scores, key=lambda s: s[0])[1]
    return out


def run(methods, kinds, nfes, n, tuned) -> dict:
    results = {}
    for kind in kinds:
        problem = mixture_problem(kind, d=D, seed=MEASUREMENT_SEED)
        floor = problem.floor(n)
        rows = []
        for method in methods:
            params = {**method.defaults, **tuned.get(kind, {}).get(method.name, {})}
            for nfe in nfes:
                res = evaluate(method, problem, nfe, n, method.seeds, params)
                rows.append({"method": method.name, "library": method.library, "nfe": nfe,
                             "backward": method.backward, "params": params,
                             "seeds": list(method.seeds), **res})  # fmt: skip
                print(f"  {kind} {method.name} NFE {nfe}: mean {res['mean']:.3f} weights "
                      f"{res['weights']:.3f} SW {res['sw']:.3f} ({res['wall_s']:.1f} s)",
                      flush=True)  # fmt: skip
        results[kind] = {
            "operator": type(problem.operator).__name__,
            "measurements": int(problem.y.shape[-1]),
            "exact_weights": problem.posterior.weights.tolist(),
            "floor": floor,
            "rows": rows,
        }
    return results


def fmt(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "—"
    return "diverged" if not math.isfinite(v) else f"{v:.{digits}f}"


def params_text(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items() if k != "particles") or "—"


def sw_text(r: dict) -> str:
    """SW2, with the largest of the seeds when the row averages several."""
    if len(r["sw_runs"]) > 1:
        return f"{fmt(r['sw'])} (max {fmt(max(r['sw_runs']))})"
    return fmt(r["sw"])


def tables(results: dict, nfes) -> str:
    """Per problem: every run; then the goals side by side."""
    parts = []
    for kind, res in results.items():
        floor = res["floor"]
        head = ["method", "params", "NFE", "evals", "bwd", "mean err", "weight err", "SW2",
                "SW2 / floor", "wall s"]  # fmt: skip
        body = [["exact samples (floor)", "—", "—", "—", "—", fmt(floor["mean"]),
                 fmt(floor["weights"]), fmt(floor["sw"]), "1.00", "—"]]  # fmt: skip
        for r in res["rows"]:
            name = r["method"] if r["library"] == "flowforge" else f"*{r['method']}*"
            body.append([
                name, params_text(r["params"]), r["nfe"], r["evals"] if r["evals"] else "—",
                "yes" if r["backward"] else "", fmt(r["mean"]), fmt(r["weights"]), sw_text(r),
                fmt(r["sw"] / floor["sw"], 2), f"{r['wall_s']:.2f}",
            ])  # fmt: skip
        parts.append(
            f"#### {kind} ({res['operator']}, {res['measurements']} measurements, exact "
            f"weights {', '.join(f'{w:.3f}' for w in res['exact_weights'])})\n\n"
            + markdown(head, body)
        )
    parts.append("#### Goals: SW2 of the same method in both libraries; smc against the floor")
    head = ["problem", "NFE", "dps", "*deepinv.dps*", "pigdm", "*deepinv.pigdm*", "best of ours",
            "*deepinv.diffpir*", "smc SW2 / floor", "smc x4 SW2 / floor"]  # fmt: skip
    body = []
    for kind, res in results.items():
        for nfe in nfes:
            cell = {r["method"]: r for r in res["rows"] if r["nfe"] == nfe}
            ours = [r for r in cell.values() if r["library"] == "flowforge"
                    and r["method"] not in ("prior (unguided)", "smc x4")]  # fmt: skip
            best = min(ours, key=lambda r: r["sw"]) if ours else None

            def get(name: str, c: dict = cell) -> str:
                return fmt(c[name]["sw"]) if name in c else "—"

            def ratio(name: str, c: dict = cell, f: float = res["floor"]["sw"]) -> str:
                if name not in c:
                    return "—"
                r = c[name]
                worst = f" (max {fmt(max(r['sw_runs']) / f, 2)})" if len(r["sw_runs"]) > 1 else ""
                return fmt(r["sw"] / f, 2) + worst

            body.append([
                kind, nfe, get("dps"), get("deepinv.dps"), get("pigdm"), get("deepinv.pigdm"),
                f"{fmt(best['sw'])} ({best['method']})" if best else "—", get("deepinv.diffpir"),
                ratio("smc"), ratio("smc x4"),
            ])  # fmt: skip
    parts.append(markdown(head, body))
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=PROBLEMS)
    parser.add_argument("--nfe", nargs="+", type=int, default=list(NFES))
    parser.add_argument("--samples", type=int, default=SAMPLES)
    parser.add_argument("--methods", nargs="+", help="only these (names as in the tables)")
    parser.add_argument("--no-deepinv", action="store_true")
    parser.add_argument("--tune", action="store_true", help="search GRIDS first, use the result")
    parser.add_argument("--no-run", action="store_true", help="with --tune: only search")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("guidance.json"))
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UserWarning)
    methods = FLOWFORGE + ([] if args.no_deepinv else DEEPINV)
    if args.methods:
        methods = [m for m in methods if m.name in args.methods]
    start = time.perf_counter()
    tuned = TUNED
    if args.tune:
        tuned = tune(methods, args.problems)
        print("TUNED =", json.dumps(tuned, indent=4))
        if args.no_run:
            return
    results = run(methods, args.problems, args.nfe, args.samples, tuned)
    report = tables(results, args.nfe)
    print(report)
    versions = {"torch": torch.__version__}
    if not args.no_deepinv:
        versions["deepinv"] = import_deepinv().__version__
    out = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} thr.",
        "versions": versions,
        "protocol": {
            "d": D,
            "samples": args.samples,
            "nfe": args.nfe,
            "measurement_seed": MEASUREMENT_SEED,
            "sample_seeds": list(SAMPLE_SEEDS),
            "tune_sample_seed": SAMPLE_SEED,
            "smc_seeds": list(SMC_SEEDS),
            "tune": {"pilot_seeds": list(PILOT_SEEDS), "nfe": TUNE_NFE, "samples": TUNE_SAMPLES},
            "grids": GRIDS,
        },
        "tuned": tuned,
        "problems": results,
        "markdown": report,
        "seconds": time.perf_counter() - start,
    }
    args.out.write_text(json.dumps(out, indent=1))
    print(f"({time.perf_counter() - start:.0f} s; wrote {args.out})")


if __name__ == "__main__":
    main()
