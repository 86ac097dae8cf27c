"""The training loop: learning, bit-exact resume, NaN handling, interruption, RNG state."""

from __future__ import annotations

import io
import os
import random
import signal

import numpy as np
import pytest
import torch

from flowforge.errors import CheckpointError, NumericalError
from flowforge.experiment.signals import StopOnSignal
from flowforge.models import MLP
from flowforge.paths import CondOT
from flowforge.spec.models import TrainSpec
from flowforge.targets import GaussianMixture
from flowforge.training import Trainer, rng

DATA = GaussianMixture(means=[[-1.0, 0.0], [1.0, 0.0]], stds=0.3).sample(
    512, generator=torch.Generator().manual_seed(0)
)


def _trainer(steps=40, seed=0, model=None, **cfg):
    torch.manual_seed(seed)
    settings = dict(batch_size=32, lr=1e-2, ema_decay=0.9, checkpoint_every=10, log_every=5)
    config = TrainSpec(steps=steps, **{**settings, **cfg})
    model = model or MLP(2, 32, 2, 8)
    return Trainer(
        model, CondOT(), "velocity", DATA, config, generator=torch.Generator().manual_seed(seed)
    )


def _through_disk(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def _assert_same(a: Trainer, b: Trainer):
    for (ka, va), (kb, vb) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert ka == kb and torch.equal(va, vb), ka
    for k in a.ema.shadow:
        assert torch.equal(a.ema.shadow[k], b.ema.shadow[k]), k
    sa, sb = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    for i in sa:
        for k in sa[i]:
            assert torch.equal(sa[i][k], sb[i][k])
    assert torch.equal(a.generator.get_state(), b.generator.get_state())
    assert a.step == b.step


def test_training_lowers_the_loss():
    trainer = _trainer(steps=150)
    logs = []
    summary = trainer.fit(on_log=logs.append)
    assert summary.step == 150 and not summary.interrupted and summary.nonfinite == 0
    assert [r["step"] for r in logs] == list(range(5, 151, 5))
    assert logs[-1]["loss"] < 0.8 * logs[0]["loss"]


def test_resume_is_bit_exact():
    straight = _trainer()
    straight.fit()

    first = _trainer()
    saved = {}
    first.config = first.config.model_copy(update={"steps": 20})
    first.fit(on_checkpoint=lambda step: saved.setdefault(step, _through_disk(first.state_dict())))
    # perturb every RNG a resumed process would not share with the first one
    torch.manual_seed(123), np.random.seed(5), random.seed(9)
    second = _trainer(seed=77)  # different init and generator: all must come from the state
    second.load_state_dict(saved[20])
    second.fit()
    _assert_same(straight, second)


def test_rng_capture_restores_every_generator():
    gen = torch.Generator().manual_seed(1)
    state = _through_disk(rng.capture(gen))
    expected = (torch.rand(3, generator=gen), torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(0), np.random.seed(0), random.seed(0), gen.manual_seed(0)
    rng.restore(gen, state)
    got = (torch.rand(3, generator=gen), torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], got[0]) and torch.equal(expected[1], got[1])
    assert np.array_equal(expected[2], got[2]) and expected[3] == got[3]


def test_rng_state_of_another_device_is_a_clear_error():
    state = {**rng.capture(torch.Generator()), "generator_device": "cuda"}
    with pytest.raises(CheckpointError, match="--device cuda"):
        rng.restore(torch.Generator(), state)


def test_derived_seeds_are_stable_and_distinct():
    assert rng.derive_seed(0, "train") == rng.derive_seed(0, "train")
    assert len({rng.derive_seed(s, k) for s in (0, 1) for k in ("train", "sample")}) == 4


class Flaky(MLP):
    """Outputs NaN on the calls listed in `bad` (0-based call numbers)."""

    def __init__(self, bad):
        super().__init__(2, 16, 1, 4)
        self.bad, self.calls = set(bad), 0

    def forward(self, x, t):
        out = super().forward(x, t)
        self.calls += 1
        return out * float("nan") if self.calls - 1 in self.bad else out


def test_nonfinite_steps_are_skipped_and_counted():
    trainer = _trainer(steps=30, model=Flaky(bad={3, 4, 10}))
    summary = trainer.fit()
    assert summary.step == 30 and summary.nonfinite == 3
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_too_many_nonfinite_steps_in_a_row_stop_training():
    trainer = _trainer(steps=100, model=Flaky(bad=set(range(5, 100))))
    with pytest.raises(NumericalError, match="20 steps in a row"):
        trainer.fit()
    assert trainer.step == 25


def test_stop_request_checkpoints_and_reports_interruption():
    trainer = _trainer(steps=100)
    saved = []
    summary = trainer.fit(on_checkpoint=saved.append, should_stop=lambda: trainer.step >= 13)
    assert summary.interrupted and summary.step == 13 and saved == [10, 13]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_training_stops_cleanly(sig):
    trainer = _trainer(steps=100)
    saved = []

    def on_step(step, loss):
        if step == 7:
            os.kill(os.getpid(), sig)

    with StopOnSignal() as stop:
        summary = trainer.fit(
            on_step=on_step,
            on_checkpoint=saved.append,
            should_stop=lambda: stop.requested is not None,
        )
    assert stop.requested == signal.Signals(sig).name
    assert summary.interrupted and summary.step == 7 and saved == [7]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_loading_a_mismatched_state_raises_checkpoint_error():
    small = _trainer(steps=1)
    big = _trainer(steps=1, model=MLP(2, 64, 2, 8))
    with pytest.raises(CheckpointError, match="does not match"):
        big.load_state_dict(small.state_dict())
    with pytest.raises(CheckpointError):
        small.load_state_dict({"step": 3})


def test_ema_with_zero_decay_is_the_live_model():
    trainer = _trainer(steps=5, ema_decay=0.0)
    trainer.fit()
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(trainer.ema.shadow[k], v)
