"""How the driver runs guidance: conditions, gradients, populations, reuse, missing inputs."""

from __future__ import annotations

import pytest
import torch

import flowforge
from flowforge.errors import InvalidArgumentError
from flowforge.field import Dynamics
from flowforge.guidance import DPS, SMC, Guidance, Measurement
from flowforge.operators import Identity
from flowforge.paths import CondOT
from flowforge.targets import GaussianMixture

GM = GaussianMixture(means=[[-1.0, 0.0], [1.0, 0.5]], stds=[0.4, 0.5])
KW = dict(path="cond_ot", prediction="velocity", solver="euler", nfe=5)


class Counting:
    """The mixture's exact velocity; counts its calls and records the keywords it got."""

    def __init__(self):
        self.calls = 0
        self.keywords = []
        self.inner = GM.field(CondOT())

    def __call__(self, x, t, **cond):
        self.calls += 1
        self.keywords.append(sorted(cond))
        return self.inner(x, t)


class Recorder(Guidance):
    """Adds 1 to every log-weight; records what each population call saw."""

    def __init__(self):
        self.seen = []

    def on_population(self, x, log_weights, t, dynamics):
        self.seen.append((log_weights.clone(), float(t[0]), dynamics.step.index))
        return x, log_weights + 1


def test_cond_reaches_every_model_call():
    field = Counting()
    flowforge.sample(field, torch.randn(3, 2), cond={"label": torch.zeros(3)}, **KW)
    assert field.keywords == [["label"]] * 5


def test_population_hook_runs_after_each_step_with_carried_log_weights():
    hook = Recorder()
    flowforge.sample(Counting(), torch.randn(3, 2), guidance=hook, **KW)
    assert [s[2] for s in hook.seen] == [0, 1, 2, 3, 4]
    assert [s[1] for s in hook.seen] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    for step, (log_w, _, _) in enumerate(hook.seen):
        torch.testing.assert_close(log_w, torch.full((3,), float(step)))


def test_population_hook_refuses_solvers_that_remember_past_steps():
    with pytest.raises(InvalidArgumentError, match="reverse_sde"):
        flowforge.sample(
            Counting(), torch.randn(4, 2), guidance=Recorder(), **KW | {"solver": "dpm_solver_pp"}
        )


def test_missing_inputs_are_named_before_any_model_call():
    field = Counting()
    with pytest.raises(InvalidArgumentError, match="missing measurement"):
        flowforge.sample(field, torch.randn(3, 2), guidance=DPS(), **KW)
    assert field.calls == 0


def test_reused_outputs_save_the_solvers_calls():
    """SMC evaluates the model at each new state and hands it to the next step: the network runs
    once per promised evaluation, the last step excepted (its end state is not evaluated)."""
    field = Counting()
    m = Measurement(Identity(noise_std=0.5), torch.zeros(1, 2))
    gen = torch.Generator().manual_seed(0)
    flowforge.sample(field, torch.randn(8, 2), guidance=SMC(measurement=m), generator=gen, **KW)
    assert field.calls == 5 + 1  # 5 solver evaluations, 4 of them reused, + the final potential


def test_gradient_hooks_see_a_tracked_state_and_return_a_detached_prediction():
    seen = []

    class Probe(Guidance):
        requires_grad = True

        def on_prediction(self, pred, dynamics):
            seen.append(pred.x_t.requires_grad)
            return pred.with_value(pred.value * 1.0)

    f = Dynamics(GM.field(CondOT()), CondOT(), "velocity", [Probe()])
    with torch.enable_grad():
        pred = f(torch.randn(3, 2), torch.full((3,), 0.5))
    assert seen == [True]
    assert not pred.value.requires_grad and not pred.x_t.requires_grad


def test_memory_is_per_solve():
    f = Dynamics(GM.field(CondOT()), CondOT(), "velocity")
    owner = object()
    f.memory(owner)["mu"] = 1
    f.begin()
    assert f.memory(owner) == {}
