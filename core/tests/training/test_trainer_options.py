"""Trainer options: accumulation, bf16, EMA warm-up, LR schedules, skipped steps, evaluation,
no host sync per step, compile."""

from __future__ import annotations

import copy
import itertools
import math
import os
import random
import sys

import pytest
import torch

from flowforge.errors import NumericalError
from flowforge.graph import host_sync
from flowforge.graph.host_sync import forbid_host_sync
from flowforge.models import MLP
from flowforge.paths import CondOT
from flowforge.spec.models import TrainSpec
from flowforge.targets import GaussianMixture
from flowforge.training import EMA, Regression, Trainer, lr_factor, split_batch

DATA = GaussianMixture(means=[[-1.0, 0.0], [1.0, 0.0]], stds=0.3).sample(
    512, generator=torch.Generator().manual_seed(0)
)


def _trainer(model=None, seed=0, **cfg):
    settings = dict(steps=20, batch_size=32, lr=1e-2, ema_decay=0.9, log_every=5)
    config = TrainSpec(**{**settings, **cfg})
    torch.manual_seed(seed)
    model = model or MLP(2, 32, 2, 8, self_condition=config.self_condition)
    objective = Regression.from_spec(CondOT(), "velocity", DATA, config)
    return Trainer(model, objective, config, generator=torch.Generator().manual_seed(seed))


def _weights(trainer):
    return torch.cat([p.detach().flatten() for p in trainer.model.parameters()])


@pytest.mark.parametrize(
    "cfg",
    [
        {},
        {
            "coupling": "exact_ot",
            "time_sampler": {"name": "uniform", "params": {"draws": "stratified"}},
        },
        {"coupling": {"name": "wcfm", "params": {"eps": 0.5}}, "self_condition": True},
    ],
    ids=["independent", "exact_ot-stratified", "wcfm-self_condition"],
)
def test_accumulation_over_micro_batches_equals_one_big_batch(cfg):
    """The step draws the whole batch once, so k micro-batches see exactly the big batch's
    samples; their summed gradients equal its gradient up to float rounding."""
    big = _trainer(batch_size=64, **cfg)
    small = _trainer(batch_size=64, grad_accumulation=4, **cfg)
    big.fit()
    small.fit()
    torch.testing.assert_close(_weights(small), _weights(big), rtol=1e-4, atol=1e-5)
    assert torch.equal(big.generator.get_state(), small.generator.get_state())


def test_accumulation_gradient_matches_within_float_rounding():
    big, small = _trainer(batch_size=64), _trainer(batch_size=64, grad_accumulation=8)
    grads = []
    for trainer in (big, small):
        batch = trainer.draw_batch()
        trainer.optimizer.zero_grad()
        trainer._backward(batch)
        grads.append(torch.cat([p.grad.flatten() for p in trainer.params]))
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-7)


def test_gradients_are_released_after_the_next_forward_pass():
    """A step's gradients live until the next step's first forward pass is done (so the new
    gradients reuse their memory: `Trainer._backward`), then are replaced, not accumulated."""
    trainer = _trainer(grad_accumulation=2)
    seen = []
    trainer.model.register_forward_pre_hook(
        lambda module, args: seen.append([p.grad for p in trainer.params])
    )
    trainer.train_step()
    first = [p.grad for p in trainer.params]
    state = copy.deepcopy(trainer.state_dict())
    trainer.train_step()
    assert all(g is None for g in seen[0])  # the first step's first micro-batch
    assert all(g is f for g, f in zip(seen[2], first, strict=True))  # alive in the next forward
    resumed = _trainer(grad_accumulation=2)
    resumed.load_state_dict(state)
    resumed.train_step()  # starts without gradients
    for p, q in zip(trainer.params, resumed.params, strict=True):
        assert torch.equal(p.grad, q.grad)


def test_split_batch_keeps_order_and_checks_sizes():
    batch = {"x": torch.arange(12.0).reshape(6, 2), "t": torch.arange(6.0)}
    parts = split_batch(batch, 3)
    assert [p["t"].tolist() for p in parts] == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(ValueError, match="divide"):
        split_batch(batch, 4)
    with pytest.raises(ValueError, match="grad_accumulation"):
        TrainSpec(batch_size=10, grad_accumulation=4)


def test_bf16_autocast_runs_and_trains():
    """bf16 training reaches the float32 run's loss (the batch loss of flow matching keeps a
    large irreducible part, so the comparison is with float32, not with zero)."""
    reference = _trainer(steps=150, lr=3e-3).fit()
    trainer = _trainer(steps=150, precision="bf16", lr=3e-3)
    logs = []
    summary = trainer.fit(on_log=logs.append)
    assert summary.nonfinite == 0 and logs[-1]["loss"] < 0.9 * logs[0]["loss"]
    assert summary.loss == pytest.approx(reference.loss, rel=0.05)
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    x, t = DATA[:8], torch.rand(8)
    with torch.no_grad():
        full, half = trainer.model(x, t), trainer.network(x, t)
    # bfloat16 products: close to float32, but not the same numbers
    assert half.dtype == torch.float32
    assert not torch.equal(full, half) and torch.allclose(full, half, atol=0.1, rtol=0.05)


class Flaky(MLP):
    """Outputs NaN on the calls listed in `bad` (0-based call numbers)."""

    def __init__(self, bad):
        super().__init__(2, 16, 1, 4)
        self.bad, self.calls = set(bad), 0

    def forward(self, x, t, self_cond=None):
        out = super().forward(x, t)
        self.calls += 1
        return out * float("nan") if self.calls - 1 in self.bad else out


def test_a_skipped_step_keeps_the_weights_and_the_optimizer_state():
    trainer = _trainer(model=Flaky(bad={3}), steps=10)
    for _ in range(3):
        trainer.train_step()
    before = copy.deepcopy(trainer.state_dict())  # its tensors are the live weights
    trainer.train_step()  # the NaN step
    after = trainer.state_dict()
    decay = trainer.ema.decay_at(4)
    for k, weight in before["model"].items():
        assert torch.equal(weight, after["model"][k]), k
        # the EMA averages the unchanged weights in, as after any step: it stays finite
        expected = torch.lerp(before["ema"][k], weight, 1.0 - decay)
        torch.testing.assert_close(after["ema"][k], expected, rtol=0, atol=1e-7, msg=k)
    for i, s in before["optimizer"]["state"].items():
        for k in s:
            assert torch.equal(s[k], after["optimizer"]["state"][i][k]), k
    assert after["nonfinite"] == [1, 1] and after["step"] == 4
    trainer.train_step()
    assert trainer.state_dict()["nonfinite"] == [1, 0]


def test_nan_streak_stops_with_a_clear_message():
    trainer = _trainer(model=Flaky(bad=set(range(3, 100))), steps=100, max_nonfinite=3)
    with pytest.raises(NumericalError) as info:
        trainer.fit()
    message = str(info.value)
    assert "NaN/Inf in 3 steps in a row" in message and "train.max_nonfinite is 3" in message
    assert "lower train.lr" in message
    # the host reads the counters every min(log_every, max_nonfinite) = 3 steps
    assert trainer.step == 6


class Spiky(MLP):
    """Outputs 1000 times its value from call `start` on, for `calls` calls (0-based)."""

    def __init__(self, start, calls=1):
        super().__init__(2, 16, 1, 4)
        self.spiky, self.calls = range(start, start + calls), 0

    def forward(self, x, t, self_cond=None):
        out = super().forward(x, t)
        self.calls += 1
        return out * 1e3 if self.calls - 1 in self.spiky else out


def _spike_step(**cfg):
    """The state before and after a finite step with a loss a million times the others'."""
    trainer = _trainer(model=Spiky(start=5), steps=10, **cfg)
    for _ in range(5):
        trainer.train_step()
    before = copy.deepcopy(trainer.state_dict())  # its tensors are the live weights
    trainer.train_step()
    return trainer, before, trainer.state_dict()


def test_a_loss_spike_is_skipped_and_counted_apart_from_nan_steps():
    trainer, before, after = _spike_step(skip_spikes=10)
    for k, weight in before["model"].items():
        assert torch.equal(weight, after["model"][k]), k
    for i, s in before["optimizer"]["state"].items():
        for k in s:
            assert torch.equal(s[k], after["optimizer"]["state"][i][k]), k
    assert trainer.spikes == 1 and trainer.nonfinite == 0
    assert after["nonfinite"] == [1, 1]  # skipped steps, streak
    # the running means are of the five accepted steps only
    assert after["spikes"][1:4] == before["spikes"][1:4] and before["spikes"][3] == 5
    assert after["spikes"][4] == 1  # the spike in the current run of skipped steps
    logs = []
    summary = trainer.fit(on_log=logs.append)
    assert summary.spikes == 1 and summary.nonfinite == 0 and logs[-1]["spikes"] == 1
    assert all(math.isfinite(r["loss"]) and r["loss"] < 100 for r in logs)

    # without the guard the clipped step still moves the weights and Adam's moments
    unguarded, before, after = _spike_step()
    assert unguarded.spikes == 0
    assert not torch.equal(_flat(before["model"]), _flat(after["model"]))


def _flat(state):
    return torch.cat([v.flatten() for v in state.values()])


class _SteepGradient(torch.autograd.Function):
    """The identity, whose backward pass multiplies the gradient by `scale`."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


class SteepOnce(MLP):
    """A normal loss on every call; on call `at` (0-based) a gradient 1e6 times the usual."""

    def __init__(self, at):
        super().__init__(2, 16, 1, 4)
        self.at, self.calls = at, 0

    def forward(self, x, t, self_cond=None):
        self.calls += 1
        out = super().forward(x, t)
        return _SteepGradient.apply(out, 1e6) if self.calls - 1 == self.at else out


def test_a_gradient_spike_under_a_normal_loss_is_skipped():
    """Clipping alone scales such a step to the clip norm and takes it; the guard skips it."""
    guarded = _trainer(model=SteepOnce(at=5), steps=6, skip_spikes=10)
    plain = _trainer(model=SteepOnce(at=5), steps=6)
    for trainer in (guarded, plain):
        for _ in range(5):
            trainer.train_step()
    before = copy.deepcopy(guarded.state_dict())
    assert _flat(before["model"]).equal(_flat(plain.state_dict()["model"]))
    guarded.train_step(), plain.train_step()
    assert guarded.spikes == 1 and _flat(guarded.state_dict()["model"]).equal(
        _flat(before["model"])
    )
    assert plain.nonfinite == 0 and not _flat(plain.state_dict()["model"]).equal(
        _flat(before["model"])
    )


def test_a_loss_that_rises_for_good_stops_with_the_spike_message():
    trainer = _trainer(model=Spiky(start=3, calls=100), steps=100, skip_spikes=10, max_nonfinite=4)
    with pytest.raises(NumericalError) as info:
        trainer.fit()
    message = str(info.value)
    # read every min(log_every, max_nonfinite) = 4 steps: at step 8, after 5 spikes
    assert "5 steps in a row were skipped" in message and "train.skip_spikes (10.0)" in message
    assert "(5 spikes, 0 NaN/Inf in total" in message and "set it to null" in message


class SpikeThenNaN(MLP):
    """A loss spike on call 3, then NaN from call 6 on (0-based)."""

    def __init__(self):
        super().__init__(2, 16, 1, 4)
        self.calls = 0

    def forward(self, x, t, self_cond=None):
        out = super().forward(x, t)
        self.calls += 1
        return out * {4: 1e3}.get(self.calls, float("nan") if self.calls > 6 else 1.0)


def test_a_nan_streak_after_an_earlier_spike_stops_with_the_nan_message():
    trainer = _trainer(model=SpikeThenNaN(), steps=100, skip_spikes=10, max_nonfinite=4)
    with pytest.raises(NumericalError) as info:
        trainer.fit()
    assert "the loss or its gradient was NaN/Inf in" in str(info.value)
    assert trainer.spikes == 1 and trainer.nonfinite >= 4


def test_a_checkpoint_from_before_the_guard_resumes_with_it():
    old = _trainer(steps=10)
    old.fit(should_stop=lambda: old.step >= 4)
    state = old.state_dict()
    del state["spikes"]
    guarded = _trainer(steps=10, skip_spikes=10)
    guarded.load_state_dict(state)
    guarded.fit()
    assert guarded.step == 10 and guarded.spikes == 0
    assert guarded.state_dict()["spikes"][3] == 6  # its means start at the first resumed step
    # a checkpoint of the guard's first form (no count of the streak's spikes) resumes too
    state["spikes"] = guarded.state_dict()["spikes"][:4]
    _trainer(steps=12, skip_spikes=10).load_state_dict(state)


def _allow_fused_adam_found_inf_move(monkeypatch):
    """Fused AdamW moves `found_inf` to each parameter group's device (`found_inf.to(device)`),
    a no-op when they already share it, which the CPU guard cannot tell from a host copy."""
    flag = host_sync._to_host

    def to_host(args, kwargs):
        caller = sys._getframe(2).f_code.co_filename
        return False if caller.endswith(os.path.join("optim", "adam.py")) else flag(args, kwargs)

    monkeypatch.setattr(host_sync, "_to_host", to_host)


def test_a_training_step_never_synchronises_with_the_host(monkeypatch):
    """Loss, skip decision, EMA and counters stay on the device; only logs read them."""
    _allow_fused_adam_found_inf_move(monkeypatch)
    trainer = _trainer(
        ema_warmup=5, lr_schedule="cosine", lr_warmup=2, self_condition=True, skip_spikes=3
    )
    trainer.train_step()  # the optimizer creates its state from host values on the first step
    with forbid_host_sync():
        for _ in range(3):
            trainer.train_step()
    assert trainer.step == 4 and trainer.take_log() is not None


def test_ema_warmup_follows_its_formula_and_averages_all_weights_at_warmup_one():
    ema = EMA(torch.nn.Linear(1, 1), decay=0.999, warmup=10)
    assert ema.decay_at(1) == 0.0 and ema.decay_at(2) == pytest.approx(1 / 11)
    assert ema.decay_at(91) == pytest.approx(0.9)
    assert ema.decay_at(10**6) == 0.999
    assert EMA(torch.nn.Linear(1, 1), 0.99).decay_at(1) == 0.99

    model = torch.nn.Linear(1, 1, bias=False)
    running = EMA(model, decay=0.999, warmup=1)
    values = [3.0, -1.0, 4.0, 1.5, 9.0]
    for step, value in enumerate(values, 1):
        model.weight.data.fill_(value)
        running.update(model, step)
    assert running.shadow["weight"].item() == pytest.approx(sum(values) / len(values))


def test_ema_warmup_forgets_the_initialisation():
    """With warm-up the average after a few steps is close to the trained weights, not to
    the random initialisation as with a plain decay of 0.999."""
    plain, warm = (
        _trainer(steps=60, ema_decay=0.999),
        _trainer(steps=60, ema_decay=0.999, ema_warmup=5),
    )
    init = _weights(plain).clone()
    plain.fit()
    warm.fit()
    live = _weights(warm)

    def shadow(trainer):
        keys = dict(trainer.model.named_parameters())
        return torch.cat([trainer.ema.shadow[k].flatten() for k in keys])

    assert (shadow(warm) - live).norm() < 0.5 * (shadow(plain) - live).norm()
    assert (shadow(plain) - init).norm() < (shadow(warm) - init).norm()


@pytest.mark.parametrize("schedule", ["constant", "linear", "cosine"])
def test_lr_schedules(schedule):
    f = lr_factor(schedule, warmup=4, total=20)
    factors = [f(i) for i in range(20)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0] and factors[4] == 1.0
    assert all(0 < v <= 1 for v in factors)
    if schedule == "constant":
        assert set(factors[4:]) == {1.0}
    else:
        assert all(a > b for a, b in itertools.pairwise(factors[4:]))
        assert factors[-1] == pytest.approx(
            1 / 16 if schedule == "linear" else 0.5 * (1 + math.cos(math.pi * 15 / 16))
        )
    trainer = _trainer(steps=20, lr=1e-2, lr_schedule=schedule, lr_warmup=4)
    lrs = []
    trainer.fit(on_step=lambda step: lrs.append(trainer.lr))
    assert lrs[:-1] == pytest.approx([1e-2 * v for v in factors[1:]])


def test_a_resumed_run_takes_the_schedule_of_its_own_config():
    """A constant-rate run resumed with `linear`, warm-up at the resumed step and a new end,
    anneals from there to the end (warm-up-stable-decay): the schedule is not in the checkpoint;
    the peak learning rate is, and outranks the resumed config's `lr`."""
    stable = _trainer(steps=10, lr=1e-2)
    stable.fit()
    decay = _trainer(steps=30, lr=5e-2, lr_schedule="linear", lr_warmup=10)
    decay.load_state_dict(stable.state_dict())
    lrs = []
    decay.fit(on_step=lambda step: lrs.append(decay.lr))
    f = lr_factor("linear", warmup=10, total=30)
    assert len(lrs) == 20 and lrs[:-1] == pytest.approx([1e-2 * f(i) for i in range(11, 30)])
    assert lrs[0] == pytest.approx(1e-2 * 19 / 20) and lrs[-2] == pytest.approx(1e-2 / 20)


def test_periodic_evaluation_uses_the_ema_weights_and_never_changes_training():
    seen = []

    def evaluate(model):
        seen.append((model.training, {k: v.clone() for k, v in model.state_dict().items()}))
        torch.rand(100), random.random()  # consumes global RNGs: must not reach training
        return {"score": float(len(seen))}

    plain = _trainer(eval_every=10)
    plain.fit()
    trainer = _trainer(eval_every=10)
    logs = []
    trainer.fit(on_log=logs.append, evaluate=evaluate)
    assert torch.equal(_weights(plain), _weights(trainer))
    assert [r for r in logs if "eval/score" in r] == [
        {"step": 10, "eval/score": 1.0},
        {"step": 20, "eval/score": 2.0},
    ]
    training, weights = seen[-1]
    assert not training and trainer.model.training
    for k, v in weights.items():
        assert torch.equal(v, trainer.ema.shadow[k]), k


@pytest.mark.slow
def test_compiled_network_trains_like_the_eager_one():
    pytest.importorskip("torch._inductor")
    eager, compiled = _trainer(steps=10), _trainer(steps=10, compile=True)
    eager.fit()
    compiled.fit()
    assert compiled.network.module is not compiled.model
    torch.testing.assert_close(_weights(compiled), _weights(eager), rtol=1e-4, atol=1e-5)
