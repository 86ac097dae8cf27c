"""Class-conditional regression: labels reach the model as `label=`, dropped to the null class."""

from __future__ import annotations

import pytest
import torch

from flowforge.errors import InvalidArgumentError
from flowforge.paths import CondOT
from flowforge.training.regression import NULL_LABEL, Regression


def test_labels_reach_the_model_and_are_dropped_at_the_given_rate():
    data = torch.randn(1000, 3)
    labels = torch.arange(1000) % 5
    objective = Regression(CondOT(), "velocity", data, labels=labels, label_dropout=0.25)
    batch = objective.draw(4000, torch.Generator().manual_seed(0))
    dropped = batch["label"] == NULL_LABEL
    assert abs(dropped.float().mean().item() - 0.25) < 0.03
    seen = {}

    def model(x_t, t, label=None):
        seen["label"] = label
        return torch.zeros_like(x_t)

    objective.loss(model, batch)
    assert torch.equal(seen["label"], batch["label"])
    kept = ~dropped
    # the kept labels are the data points' own: rows of class k have data[k::5] values
    rows = [int((data == x).all(1).nonzero()[0]) for x in batch["x_1"][kept][:50]]
    assert torch.equal(labels[rows], batch["label"][kept][:50])


def test_unconditional_objective_never_passes_labels():
    objective = Regression(CondOT(), "velocity", torch.randn(10, 2), labels=torch.arange(10))
    batch = objective.draw(8, torch.Generator().manual_seed(0))
    assert "label" not in batch
    objective.loss(lambda x_t, t: torch.zeros_like(x_t), batch)


def test_label_dropout_needs_labels_and_a_probability():
    with pytest.raises(InvalidArgumentError, match="needs labels"):
        Regression(CondOT(), "velocity", torch.randn(10, 2), label_dropout=0.1)
    with pytest.raises(InvalidArgumentError, match=r"label_dropout must be in \[0, 1\)"):
        Regression(
            CondOT(), "velocity", torch.randn(10, 2), labels=torch.arange(10), label_dropout=1.0
        )


def test_generate_samples_passes_each_sample_its_label():
    from flowforge.spec.models import SampleSpec
    from flowforge.tasks.sampling import generate_samples

    def model(x_t, t, label=None):
        # a field whose flow ends at the label: x_1 = x_0 + label for cond-OT velocity
        return label.to(x_t.dtype)[:, None].expand_as(x_t)

    labels = torch.arange(10) % 3
    spec = SampleSpec(solver="euler", nfe=2, num_samples=10, batch_size=4)
    gen = torch.Generator().manual_seed(0)
    z = generate_samples(
        model,
        CondOT(),
        "velocity",
        spec,
        data_shape=(1,),
        generator=gen,
        device=torch.device("cpu"),
        labels=labels,
    )
    gen = torch.Generator().manual_seed(0)
    z0 = generate_samples(
        lambda x, t, label=None: torch.zeros_like(x),
        CondOT(),
        "velocity",
        spec,
        data_shape=(1,),
        generator=gen,
        device=torch.device("cpu"),
        labels=labels,
    )
    assert torch.allclose(z - z0, labels[:, None].float())
    with pytest.raises(InvalidArgumentError, match="one class per sample"):
        generate_samples(
            model,
            CondOT(),
            "velocity",
            spec,
            data_shape=(1,),
            generator=gen,
            device=torch.device("cpu"),
            labels=labels[:5],
        )
