"""Few-step sampling: reflow and progressive distillation beat their parent at 1, 2 and 4 steps.

A parent MLP is trained for 300 steps on a 4-mode `GaussianMixture` in 2-D and 16-D (as in
`test_straightening.py`: independent pairs, so its trajectories are curved and few Euler steps
are poor). From it, with the same architecture and initialised from its weights:

- reflow: 4096 pairs `(x_0, ODE(x_0))` from RK4 in 40 evaluations, then 300 steps on them;
- distillation (one round, `Distillation` with the parent solved by RK4 in 80 evaluations over
  the span as teacher) into K = 1, 2 and 4 DDIM steps on a uniform grid, 300 steps each.

Errors, from the same 2000 noises: the sliced Wasserstein distance of K-step samples to exact
samples of the mixture (`sliced_wasserstein`), and the RMS distance of each K-step sample to
the parent's converged ODE solution of the same noise (RK4, 80 evaluations): the sampling error
proper, which both methods remove, free of the parent's own model error (which floors the
distance to the mixture of every sampler that reproduces the parent).

Bounds, from training seeds 0-3 (runs are deterministic on the CPU), as ratios to the parent at
the same number of steps (2-D / 16-D maxima over the seeds):
- reflow, sliced Wasserstein: 1 step <= 0.42 / 0.63, 2 steps <= 0.92 / 0.79 (seed 3 in 2-D:
  the parent's own ODE is at 0.56, its 2 Euler steps at 0.65); RMS: 1 step <= 0.33 / 0.52,
  2 steps <= 0.59 / 0.53; curvature <= 0.051 / 0.087;
- distillation, RMS at K = 1, 2, 4: <= 0.32 / 0.20 (every K); sliced Wasserstein at 1 step
  <= 0.38 / 0.67 (at 4 steps it is floored by the parent's model error: 0.74-1.04).
Asserted: reflow SW < 0.75 (1 step) and < 1 (2 steps), RMS < 0.7 / 0.75, curvature < 0.25;
distillation RMS < 0.5 at K = 1, 2, 4 and SW < 0.8 at 1 step.
"""

from __future__ import annotations

import copy

import pytest
import torch

import flowforge
from flowforge.metrics import sliced_wasserstein, trajectory_curvature
from flowforge.models import MLP
from flowforge.paths import CondOT
from flowforge.spec.models import TrainSpec
from flowforge.targets import GaussianMixture
from flowforge.training import Distillation, Regression, Teacher, Trainer, generate_pairs

from .conftest import four_modes

N = 2000


def _config(lr: float) -> TrainSpec:
    return TrainSpec(
        steps=300, batch_size=128, lr=lr, ema_decay=0.0, checkpoint_every=1000, log_every=1000
    )


def _fit(model, objective, lr: float, seed: int) -> MLP:
    config = _config(lr)
    Trainer(model, objective, config, generator=torch.Generator().manual_seed(seed)).fit()
    return model.eval()


def _samples(model, solver: str, nfe: int, dim: int) -> torch.Tensor:
    x_0 = torch.randn(N, dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        return flowforge.sample(
            model,
            x_0,
            path="cond_ot",
            prediction="velocity",
            solver=solver,
            nfe=nfe,
            time_grid="uniform",
        )


def _sw(x: torch.Tensor, target: GaussianMixture) -> float:
    exact = target.sample(N, generator=torch.Generator().manual_seed(9))
    return float(sliced_wasserstein(x, exact, 200, torch.Generator().manual_seed(0)))


def _rms(x: torch.Tensor, reference: torch.Tensor) -> float:
    return float((x - reference).pow(2).sum(1).mean().sqrt())


def _parent(dim: int, seed: int) -> tuple[MLP, torch.Tensor, GaussianMixture]:
    target = four_modes(dim)
    data = target.sample(4096, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(seed)
    parent = MLP(dim, 64, 3, 16)
    objective = Regression.from_spec(CondOT(), "velocity", data, _config(3e-3))
    return _fit(parent, objective, 3e-3, seed), data, target


def measure_reflow(dim: int, seed: int = 0) -> dict[str, float]:
    """Sliced Wasserstein and RMS distance to the parent's ODE solution at 1 and 2 Euler steps,
    and curvature, of the parent and of the reflowed model."""
    parent, _, target = _parent(dim, seed)
    pairs = generate_pairs(
        parent,
        CondOT(),
        "velocity",
        4096,
        data_shape=(dim,),
        solver="rk4",
        nfe=40,
        generator=torch.Generator().manual_seed(100 + seed),
    )
    objective = Regression.from_spec(
        CondOT(), "velocity", pairs.data, _config(1e-3), noise=pairs.noise
    )
    student = _fit(copy.deepcopy(parent).train(), objective, 1e-3, seed)
    x_0 = torch.randn(N, dim, generator=torch.Generator().manual_seed(7))
    reference = _samples(parent, "rk4", 80, dim)
    out = {}
    for name, model in (("parent", parent), ("reflow", student)):
        for k in (1, 2):
            x = _samples(model, "euler", k, dim)
            out[f"{name}_sw{k}"] = _sw(x, target)
            out[f"{name}_rms{k}"] = _rms(x, reference)
        out[f"{name}_curvature"] = float(trajectory_curvature(model, x_0, nfe=40)[0].mean())
    return out


def measure_distillation(dim: int, seed: int = 0) -> dict[str, float]:
    """RMS sampling error and sliced Wasserstein at K = 1, 2, 4 steps: parent (Euler, which is
    DDIM for a velocity model on cond_ot) and a student distilled into K DDIM steps."""
    parent, data, target = _parent(dim, seed)
    reference = _samples(parent, "rk4", 80, dim)
    out = {}
    for k in (1, 2, 4):
        # 80 // k per interval: the teacher's steps are exactly those of the reference solve
        teacher = Teacher(parent, CondOT(), "velocity", "rk4", 80 // k)
        grid = torch.linspace(0.0, 1.0, k + 1)
        objective = Distillation(teacher, CondOT(), "velocity", data, grid)
        student = _fit(copy.deepcopy(parent).train(), objective, 1e-3, seed)
        for name, x in (
            ("parent", _samples(parent, "euler", k, dim)),
            ("student", _samples(student, "ddim", k, dim)),
        ):
            out[f"{name}_rms{k}"] = _rms(x, reference)
            out[f"{name}_sw{k}"] = _sw(x, target)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("dim", [2, 16])
def test_reflow_lowers_the_one_and_two_step_error_and_the_curvature(dim):
    m = measure_reflow(dim)
    assert m["reflow_sw1"] < 0.75 * m["parent_sw1"], m
    assert m["reflow_sw2"] < m["parent_sw2"], m
    assert m["reflow_rms1"] < 0.7 * m["parent_rms1"], m
    assert m["reflow_rms2"] < 0.75 * m["parent_rms2"], m
    assert m["reflow_curvature"] < 0.25 * m["parent_curvature"], m


@pytest.mark.slow
@pytest.mark.parametrize("dim", [2, 16])
def test_distilled_student_beats_its_teacher_at_one_two_and_four_steps(dim):
    m = measure_distillation(dim)
    for k in (1, 2, 4):
        assert m[f"student_rms{k}"] < 0.5 * m[f"parent_rms{k}"], (k, m)
    assert m["student_sw1"] < 0.8 * m["parent_sw1"], m
