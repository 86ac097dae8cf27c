"""Progressive distillation pieces: the DDIM inversion, grids, and an objective that is exact."""

from __future__ import annotations

import pytest
import torch

import flowforge
from flowforge import registry
from flowforge.errors import InvalidArgumentError
from flowforge.models import MLP
from flowforge.targets import GaussianMixture
from flowforge.training import Distillation, Teacher, ddim_data_target, refine

PATHS = ["cond_ot", "vp_cosine", "vp_linear", "ve", "edm"]
PREDICTIONS = ["velocity", "data", "noise", "score"]
TARGET = GaussianMixture(means=[[-1.0, 0.5], [1.0, -0.5]], stds=0.4)


@pytest.mark.parametrize("name", PATHS)
def test_a_ddim_step_with_the_inverted_estimate_lands_on_the_target(name):
    path = registry.create("path", name)
    gen = torch.Generator().manual_seed(0)
    lo, hi = path.t_span
    s = lo + (hi - lo) * torch.rand(64, generator=gen, dtype=torch.float64) * 0.9
    u = s + (hi - s) * torch.rand(64, generator=gen, dtype=torch.float64)
    x_s, x_u = torch.randn(2, 64, 3, generator=gen, dtype=torch.float64)
    data = ddim_data_target(path, x_s, s, x_u, u)
    noise = path.convert(data, "data", "noise", x_s, s)
    stepped = path.alpha(u)[:, None] * data + path.sigma(u)[:, None] * noise
    torch.testing.assert_close(stepped, x_u)


def test_refine_inserts_midpoints_so_rounds_nest():
    grid = torch.tensor([0.0, 0.2, 1.0])
    once = refine(grid)
    torch.testing.assert_close(once, torch.tensor([0.0, 0.1, 0.2, 0.6, 1.0]))
    torch.testing.assert_close(refine(grid, 2)[::2], once)
    torch.testing.assert_close(refine(torch.tensor([0.0, 1.0]), 3), torch.linspace(0, 1, 9))


@pytest.mark.parametrize("name", ["cond_ot", "vp_cosine"])
@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_a_student_that_already_is_its_teacher_has_zero_loss(name, prediction):
    """With the student itself, taking one DDIM step, as teacher, the target is the student's
    own prediction: the objective is exact for every path and prediction kind."""
    path = registry.create("path", name)
    torch.manual_seed(0)
    student = MLP(2, 16, 2, 8)
    torch.nn.init.normal_(student.head.weight, std=0.3)
    lo, hi = path.t_span
    grid = torch.tensor([lo, lo + 0.3 * (hi - lo), lo + 0.7 * (hi - lo), hi])
    if prediction in ("noise", "score"):
        # no data estimate from pure noise (alpha = 0); the score is unbounded at the data end
        grid = torch.tensor([lo + 0.1 * (hi - lo), lo + 0.4 * (hi - lo), lo + 0.8 * (hi - lo)])
    data = TARGET.sample(256, generator=torch.Generator().manual_seed(1))
    teacher = Teacher(student, path, prediction, "ddim", 1)
    objective = Distillation(teacher, path, prediction, data, grid)
    batch = objective.draw(256, torch.Generator().manual_seed(2))
    assert set(batch["k"].tolist()) == set(range(len(grid) - 1))  # every interval is tried
    with torch.no_grad():
        loss = objective.loss(student, batch)
    assert loss.shape == (256,) and float(loss.max()) < 1e-8


def test_the_distilled_jump_is_learnt_on_an_exact_field():
    """One student step from pure noise to data, taught by the exact Gaussian-mixture flow:
    after training, one DDIM step is far closer to the exact ODE than one Euler step."""
    from flowforge.paths import CondOT
    from flowforge.spec.models import TrainSpec
    from flowforge.training import Trainer

    path = CondOT()
    exact = TARGET.field(path, "velocity")
    data = TARGET.sample(2048, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    student = MLP(2, 64, 2, 16)
    config = TrainSpec(steps=200, batch_size=64, lr=3e-3, ema_decay=0.0, log_every=100)
    objective = Distillation(
        Teacher(exact, path, "velocity", "rk4", 8), path, "velocity", data, torch.tensor([0.0, 1.0])
    )
    Trainer(student, objective, config, generator=torch.Generator().manual_seed(0)).fit()
    noise = torch.randn(512, 2, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        truth = flowforge.sample(
            exact, noise, path=path, prediction="velocity", solver="rk4", nfe=80
        )
        euler = flowforge.sample(
            exact, noise, path=path, prediction="velocity", solver="euler", nfe=1
        )
        one = flowforge.sample(
            student, noise, path=path, prediction="velocity", solver="ddim", nfe=1
        )

    def err(x):
        return float((x - truth).pow(2).sum(1).mean().sqrt())

    assert err(one) < 0.35 * err(euler), (err(one), err(euler))


def test_grid_and_interval_draws():
    data = torch.zeros(10, 2)
    with pytest.raises(InvalidArgumentError, match="increasing"):
        Distillation(
            lambda x, s, u: x,
            registry.create("path", "cond_ot"),
            "velocity",
            data,
            torch.tensor([0.0, 0.5, 0.5]),
        )
    objective = Distillation(
        lambda x, s, u: x,
        registry.create("path", "cond_ot"),
        "velocity",
        data,
        torch.linspace(0, 1, 5),
    )
    k = objective.draw(4000, torch.Generator().manual_seed(0))["k"]
    counts = torch.bincount(k, minlength=4).double() / 4000
    torch.testing.assert_close(
        counts, torch.full((4,), 0.25, dtype=torch.float64), atol=0.03, rtol=0
    )


def test_a_distillation_step_never_synchronises_with_the_host(monkeypatch):
    """The teacher's solve skips the driver's NaN read; the trainer's guard covers it."""
    from flowforge.graph.host_sync import forbid_host_sync
    from flowforge.paths import CondOT
    from flowforge.spec.models import TrainSpec
    from flowforge.training import Trainer

    from .test_trainer_options import _allow_fused_adam_found_inf_move

    _allow_fused_adam_found_inf_move(monkeypatch)
    path = CondOT()
    data = TARGET.sample(256, generator=torch.Generator().manual_seed(1))
    teacher = Teacher(TARGET.field(path, "velocity"), path, "velocity", "rk4", 4)
    objective = Distillation(teacher, path, "velocity", data, torch.linspace(0, 1, 3))
    config = TrainSpec(steps=4, batch_size=32, lr=1e-3, log_every=100)
    trainer = Trainer(MLP(2, 16, 1, 4), objective, config, generator=torch.Generator())
    trainer.train_step()  # the optimizer creates its state from host values on the first step
    with forbid_host_sync():
        trainer.train_step()
        trainer.train_step()
    assert trainer.step == 3 and trainer.nonfinite == 0
