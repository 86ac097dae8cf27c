"""Class-conditional few-step models: reflow pairs are made under labels and distillation's
teacher and student see each sample's label, so the few-step student keeps the condition."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import flowforge
from flowforge.errors import InvalidArgumentError
from flowforge.paths import CondOT
from flowforge.spec.models import TrainSpec
from flowforge.targets import GaussianMixture
from flowforge.training import Distillation, Regression, Teacher, Trainer, generate_pairs
from flowforge.training.labels import NULL_LABEL

PATH = CondOT()
# Two classes of 2-D points on opposite sides; the unconditional model is their equal mixture.
CLASSES = [GaussianMixture([[-2.0, 0.0]], 0.3), GaussianMixture([[2.0, 0.5]], 0.3)]
BOTH = GaussianMixture([[-2.0, 0.0], [2.0, 0.5]], 0.3)


def exact_field(x_t, t, label=None):
    """The exact velocity of class `label (B,)` per sample (NULL_LABEL or None: the mixture)."""
    if label is None:
        return BOTH.predict(x_t, t, PATH, "velocity")
    out = BOTH.predict(x_t, t, PATH, "velocity")
    for k, target in enumerate(CLASSES):
        rows = label == k
        out = torch.where(rows[:, None], target.predict(x_t, t, PATH, "velocity"), out)
    return out


class ConditionalMLP(nn.Module):
    """A small velocity model with a learned class embedding; label -1 or None: the null class."""

    def __init__(self, classes: int = 2):
        super().__init__()
        self.embed = nn.Embedding(classes + 1, 8)
        self.body = nn.Sequential(
            nn.Linear(2 + 1 + 8, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 2)
        )
        self.null = classes

    def forward(self, x_t, t, label=None):
        if label is None:
            label = torch.full((x_t.shape[0],), self.null, device=x_t.device)
        code = self.embed(torch.where(label < 0, self.null, label))
        return self.body(torch.cat([x_t, t[:, None].to(x_t.dtype), code], dim=1))


def test_pairs_are_made_under_their_labels():
    """A field whose flow moves every point by its label: x_1 = x_0 + label, across batches."""
    labels = torch.arange(10) % 3
    pairs = generate_pairs(
        lambda x, t, label=None: label.to(x.dtype)[:, None].expand_as(x),
        PATH,
        "velocity",
        10,
        data_shape=(2,),
        solver="euler",
        nfe=2,
        generator=torch.Generator().manual_seed(0),
        batch_size=3,
        labels=labels,
    )
    assert torch.equal(pairs.labels, labels)
    torch.testing.assert_close(pairs.data - pairs.noise, labels[:, None].float().expand(10, 2))
    with pytest.raises(InvalidArgumentError, match=r"shape \(10,\)"):
        generate_pairs(
            exact_field, PATH, "velocity", 10, data_shape=(2,), solver="euler", nfe=2,
            generator=torch.Generator().manual_seed(0), labels=labels[:4],
        )  # fmt: skip


def test_distillation_gives_teacher_and_student_each_samples_label():
    data = torch.randn(400, 2)
    labels = torch.arange(400) % 2
    seen = {}

    def teacher(x_s, s, u, **cond):
        seen["teacher"] = cond.get("label")
        return x_s

    def student(x_t, t, label=None):
        seen["student"] = label
        return torch.zeros_like(x_t)

    grid = torch.tensor([0.0, 0.5, 1.0])
    objective = Distillation(
        teacher, PATH, "velocity", data, grid, labels=labels, label_dropout=0.2
    )
    batch = objective.draw(2000, torch.Generator().manual_seed(0))
    objective.loss(student, batch)
    assert torch.equal(seen["teacher"], batch["label"]) and seen["student"] is seen["teacher"]
    dropped = batch["label"] == NULL_LABEL
    assert abs(float(dropped.float().mean()) - 0.2) < 0.03
    kept = batch["x_1"][~dropped]
    own = labels[[int((data == x).all(1).nonzero()[0]) for x in kept[:50]]]
    assert torch.equal(own, batch["label"][~dropped][:50])
    unconditional = Distillation(teacher, PATH, "velocity", data, grid, labels=labels)
    assert "label" not in unconditional.draw(8, torch.Generator().manual_seed(0))
    with pytest.raises(InvalidArgumentError, match="needs labels"):
        Distillation(teacher, PATH, "velocity", data, grid, label_dropout=0.1)


def test_a_conditional_student_that_is_its_teacher_has_zero_loss():
    """Teacher and student get the same labels: the exact conditional field, one DDIM step,
    is its own target; the unconditional field in its place is not."""
    data = torch.cat([CLASSES[0].sample(200), CLASSES[1].sample(200)])
    labels = torch.arange(400) // 200
    teacher = Teacher(exact_field, PATH, "velocity", "ddim", 1)
    grid = torch.tensor([0.1, 0.5, 0.9])
    objective = Distillation(
        teacher, PATH, "velocity", data, grid, labels=labels, label_dropout=0.0
    )
    batch = objective.draw(400, torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert float(objective.loss(exact_field, batch).max()) < 1e-8
        blind = objective.loss(lambda x, t, label=None: exact_field(x, t), batch)
    assert float(blind.mean()) > 0.1


def _fit(model, objective, steps=400, lr=3e-3, seed=0):
    config = TrainSpec(steps=steps, batch_size=128, lr=lr, ema_decay=0.0, log_every=10**6)
    Trainer(model, objective, config, generator=torch.Generator().manual_seed(seed)).fit()
    return model.eval()


LABELS = torch.arange(400) // 200  # 200 samples of each class
NOISE = torch.randn(400, 2, generator=torch.Generator().manual_seed(5))


def _sample(model, solver: str, steps: int) -> torch.Tensor:
    with torch.no_grad():
        return flowforge.sample(
            model, NOISE, path=PATH, prediction="velocity", solver=solver, nfe=steps,
            time_grid="uniform", cond={"label": LABELS},
        )  # fmt: skip


def _class_accuracy(x: torch.Tensor) -> float:
    """Share of the samples nearest their own class's mean."""
    means = torch.stack([c.means[0] for c in CLASSES]).to(x.dtype)
    return float((torch.cdist(x, means).argmin(1) == LABELS).float().mean())


@pytest.fixture(scope="module")
def parent():
    data = torch.cat([CLASSES[0].sample(2000), CLASSES[1].sample(2000)])
    labels = torch.arange(4000) // 2000
    torch.manual_seed(0)
    objective = Regression(PATH, "velocity", data, labels=labels, label_dropout=0.1)
    return _fit(ConditionalMLP(), objective), data, labels


def test_reflow_with_labels_keeps_the_class(parent):
    model, _, _ = parent
    labels = torch.arange(2048) % 2
    pairs = generate_pairs(
        model, PATH, "velocity", 2048, data_shape=(2,), solver="rk4", nfe=20,
        generator=torch.Generator().manual_seed(1), labels=labels,
    )  # fmt: skip
    objective = Regression(
        PATH, "velocity", pairs.data, noise=pairs.noise, labels=pairs.labels, label_dropout=0.1
    )
    student = _fit(copy.deepcopy(model).train(), objective, steps=300, lr=1e-3)
    # pairs made without their labels teach the marginal: about 0.5
    assert _class_accuracy(_sample(student, "euler", 1)) > 0.95


def test_distillation_with_labels_learns_the_conditional_map(parent):
    """The 2-step student under each label lands near the parent's ODE solution under that
    label: RMS 0.02 against the parent's own 2 steps' 0.20 (a student distilled without labels
    stays at 0.23: its conditional branch never learns the jump)."""
    model, data, labels = parent
    teacher = Teacher(model, PATH, "velocity", "rk4", 8)
    objective = Distillation(
        teacher, PATH, "velocity", data, torch.tensor([0.0, 0.5, 1.0]), labels=labels,
        label_dropout=0.1,
    )  # fmt: skip
    student = _fit(copy.deepcopy(model).train(), objective, steps=300, lr=1e-3)
    reference = _sample(model, "rk4", 80)
    rms = lambda x: float((x - reference).square().sum(1).mean().sqrt())
    assert rms(_sample(student, "ddim", 2)) < 0.25 * rms(_sample(model, "ddim", 2))
