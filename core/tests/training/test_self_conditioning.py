"""Self-conditioning: the opt-in, the training call, and the sampling wrapper."""

from __future__ import annotations

import pytest
import torch

import flowforge
from flowforge.errors import InvalidArgumentError
from flowforge.models import MLP
from flowforge.paths import CondOT
from flowforge.spec.models import SampleSpec
from flowforge.tasks.sampling import generate_samples
from flowforge.training import SelfConditioned, takes_self_condition
from flowforge.training.self_conditioning import check_model, draw_mask, self_conditioned_call


class Recorder(torch.nn.Module):
    """Opts in; returns `x_t + self_cond` (a velocity) and records every estimate it gets."""

    self_conditioning = True

    def __init__(self):
        super().__init__()
        self.seen: list[torch.Tensor | None] = []

    def forward(self, x_t, t, self_cond=None):
        self.seen.append(None if self_cond is None else self_cond.clone())
        return x_t + (0 if self_cond is None else self_cond)


def test_models_opt_in_by_attribute_and_keyword():
    assert takes_self_condition(MLP(2, 8, 1, 4, self_condition=True))
    assert not takes_self_condition(MLP(2, 8, 1, 4))
    model = MLP(2, 8, 1, 4, self_condition=True)
    torch.nn.init.normal_(model.head.weight)
    x, t = torch.randn(5, 2), torch.rand(5)
    assert torch.equal(model(x, t), model(x, t, self_cond=torch.zeros_like(x)))
    assert not torch.equal(model(x, t), model(x, t, self_cond=torch.ones_like(x)))


def test_option_and_opt_in_must_agree():
    with pytest.raises(InvalidArgumentError, match=r"model.params.self_condition: true"):
        check_model(MLP(2, 8, 1, 4), True, "mlp")
    with pytest.raises(InvalidArgumentError, match=r"train\.self_condition is false"):
        check_model(MLP(2, 8, 1, 4, self_condition=True), False, "mlp")
    check_model(MLP(2, 8, 1, 4, self_condition=True), True, "mlp")


def test_training_call_feeds_the_detached_data_estimate_to_the_chosen_samples():
    path, model = CondOT(), Recorder()
    x_t, t = torch.randn(6, 2), torch.rand(6)
    mask = torch.tensor([True, False, True, False, True, False])
    out = self_conditioned_call(model, path, "velocity", mask)(x_t, t)
    first, second = model.seen
    assert torch.equal(first, torch.zeros_like(x_t))
    estimate = path.convert(x_t, "velocity", "data", x_t, t)  # the first pass predicted x_t
    torch.testing.assert_close(second[mask], estimate[mask])
    assert torch.equal(second[~mask], torch.zeros_like(second[~mask]))
    assert not second.requires_grad
    torch.testing.assert_close(out, x_t + second)


def test_the_mask_is_a_fair_coin_per_sample():
    mask = draw_mask(20000, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert abs(mask.float().mean().item() - 0.5) < 0.01


def test_sampling_wrapper_feeds_the_previous_estimate_and_resets():
    path, model = CondOT(), Recorder()
    field = SelfConditioned(model, path, "velocity")
    x = torch.randn(4, 2)
    flowforge.sample(field, x, path=path, prediction="velocity", solver="euler", nfe=3)
    assert torch.equal(model.seen[0], torch.zeros_like(x))
    assert all(s is not None and s.abs().sum() > 0 for s in model.seen[1:])
    field.reset()
    field(x, torch.zeros(4))
    assert torch.equal(model.seen[-1], torch.zeros_like(x))
    field(torch.randn(7, 2), torch.zeros(7))  # another batch size: starts from zeros
    assert torch.equal(model.seen[-1], torch.zeros(7, 2))
    with pytest.raises(InvalidArgumentError, match="self-conditioning input"):
        SelfConditioned(MLP(2, 8, 1, 4), path, "velocity")


def test_generate_samples_wraps_a_self_conditioned_model_and_resets_each_batch():
    model = Recorder()
    spec = SampleSpec(solver="euler", nfe=2, num_samples=6, batch_size=3)
    generate_samples(
        model,
        CondOT(),
        "velocity",
        spec,
        data_shape=(2,),
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
    )
    zeros = [i for i, s in enumerate(model.seen) if s is not None and not s.abs().sum()]
    assert zeros == [0, 2]  # the first call of each batch
