"""The training loop: learning, bit-exact resume, NaN handling, interruption, RNG state."""

from __future__ import annotations

import io
import os
import random
import signal

import numpy as np
import pytest
import torch

from flowforge.errors import CheckpointError, InvalidArgumentError, NumericalError
from flowforge.experiment.signals import StopOnSignal
from flowforge.models import MLP
from flowforge.paths import CondOT
from flowforge.spec.models import TrainSpec
from flowforge.targets import GaussianMixture
from flowforge.training import Regression, Trainer, rng
from flowforge.training.couplings import ClassConditionalOT, ExactOT, Independent
from flowforge.training.time_samplers import LogitNormal, Uniform

DATA = GaussianMixture(means=[[-1.0, 0.0], [1.0, 0.0]], stds=0.3).sample(
    512, generator=torch.Generator().manual_seed(0)
)


def _trainer(steps=40, seed=0, model=None, labels=None, **cfg):
    torch.manual_seed(seed)
    settings = dict(batch_size=32, lr=1e-2, ema_decay=0.9, checkpoint_every=10, log_every=5)
    config = TrainSpec(steps=steps, **{**settings, **cfg})
    model = model or MLP(2, 32, 2, 8)
    gen = torch.Generator().manual_seed(seed)
    objective = Regression.from_spec(CondOT(), "velocity", DATA, config, labels=labels)
    return Trainer(model, objective, config, generator=gen)


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


OBJECTIVES = {
    "default": {},
    "sinkhorn-stratified-min_snr": {
        "coupling": {"name": "sinkhorn", "params": {"eps": 0.1, "iters": 20}},
        "time_sampler": {"name": "logit_normal", "params": {"draws": "stratified"}},
        "loss": {"weighting": "min_snr"},
    },
    "wcfm-u_shaped-huber": {
        "coupling": "wcfm",
        "time_sampler": {"name": "u_shaped", "params": {"draws": "low_discrepancy"}},
        "loss": {"huber_c": 0.01},
    },
    # so tight that ordinary steps count as spikes: the guard's running mean must resume too
    "skip_spikes": {"skip_spikes": 1.02},
}


@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_resume_is_bit_exact(objective):
    cfg = OBJECTIVES[objective]
    straight = _trainer(**cfg)
    straight.fit()

    first = _trainer(**cfg)
    saved = {}
    first.fit(
        on_checkpoint=lambda step: saved.setdefault(step, _through_disk(first.state_dict())),
        should_stop=lambda: first.step >= 20,
    )
    # perturb every RNG a resumed process would not share with the first one
    torch.manual_seed(123), np.random.seed(5), random.seed(9)
    second = _trainer(seed=77, **cfg)  # different init and generator: all from the state
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


@pytest.mark.gpu
def test_rng_state_loaded_onto_the_gpu_restores():
    """A checkpoint loaded with `map_location="cuda"` has its byte-tensor RNG states on the GPU;
    restoring must still work (a resumed GPU run failed on exactly this)."""
    gen = torch.Generator("cuda").manual_seed(1)
    buf = io.BytesIO()
    torch.save(rng.capture(gen), buf)
    buf.seek(0)
    state = torch.load(buf, map_location="cuda", weights_only=True)
    expected = torch.rand(3, generator=gen, device="cuda")
    gen.manual_seed(0)
    rng.restore(gen, state)
    assert torch.equal(torch.rand(3, generator=gen, device="cuda"), expected)


def _cuda_trainer(steps=30, seed=0, **cfg):
    """A CUDA trainer whose draw pairs by Sinkhorn (device work inside the draw)."""
    torch.manual_seed(seed)
    settings = dict(batch_size=64, lr=1e-2, ema_decay=0.9, checkpoint_every=10, log_every=5)
    config = TrainSpec(
        steps=steps, coupling={"name": "sinkhorn", "params": {"eps": 0.1}}, **settings, **cfg
    )
    objective = Regression.from_spec(CondOT(), "velocity", DATA.cuda(), config)
    gen = torch.Generator("cuda").manual_seed(seed)
    return Trainer(MLP(2, 32, 2, 8).cuda(), objective, config, generator=gen)


@pytest.mark.gpu
def test_drawing_ahead_trains_on_the_same_batches():
    """The batch drawn on the side stream is the one the step would draw itself: same weights,
    EMA, optimizer state and generator after training, bit for bit."""
    ahead, inline = _cuda_trainer(draw_ahead=True), _cuda_trainer(draw_ahead=False)
    ahead.fit()
    inline.fit()
    assert ahead._side is not None and inline._side is None
    _assert_same(ahead, inline)


@pytest.mark.gpu
def test_resume_with_drawing_ahead_is_bit_exact():
    """A checkpoint taken while a batch is drawn ahead holds the generator from before that
    draw: the resumed run draws it again and ends where an uninterrupted run ends."""
    straight = _cuda_trainer()
    straight.fit()
    first, saved = _cuda_trainer(draw_ahead=True), {}
    first.fit(
        on_checkpoint=lambda step: saved.setdefault(step, _through_disk(first.state_dict())),
        should_stop=lambda: first.step >= 20,
    )
    assert first._ahead is not None
    second = _cuda_trainer(seed=77, draw_ahead=True)
    second.load_state_dict(saved[20])
    second.fit()
    _assert_same(straight, second)


@pytest.mark.gpu
def test_cuda_graph_compile_mode_trains_like_eager():
    """compile_mode reduce-overhead (CUDA graphs of the compiled passes) takes the steps the
    eager network takes, up to the fused kernels' rounding."""
    graphs = _cuda_trainer(steps=20, compile=True, compile_mode="reduce-overhead")
    eager = _cuda_trainer(steps=20)
    graphs.fit()
    eager.fit()
    for k, v in eager.model.state_dict().items():
        torch.testing.assert_close(graphs.model.state_dict()[k], v, rtol=1e-3, atol=1e-4)


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
    assert all(torch.isfinite(v).all() for v in trainer.ema.shadow.values())


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
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN under nohup, not the default handler

    def on_step(step):
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
    assert signal.getsignal(signal.SIGINT) is before


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


def test_time_sampler_coupling_and_loss_come_from_the_config():
    trainer = _trainer(
        time_sampler={"name": "logit_normal", "params": {"mean": 0.5}},
        coupling="exact_ot",
        loss={"weighting": "min_snr", "gamma": 3.0},
    )
    assert trainer.objective.time_sampler == LogitNormal(mean=0.5)
    assert trainer.objective.coupling == ExactOT()
    assert trainer.objective.loss_spec.gamma == 3.0
    defaults = _trainer().objective
    assert (defaults.time_sampler, defaults.coupling) == (Uniform(), Independent())
    summary = trainer.fit()
    assert summary.step == 40 and summary.nonfinite == 0


def test_class_conditional_coupling_needs_labels_and_uses_them():
    with pytest.raises(InvalidArgumentError, match=r"class_conditional.*no labels"):
        _trainer(coupling="class_conditional")
    with pytest.raises(InvalidArgumentError, match=r"shape \(512,\)"):
        _trainer(coupling="class_conditional", labels=torch.zeros(3, dtype=torch.long))
    labels = (DATA[:, 0] > 0).long()  # the two modes
    seen = []

    class Spy(ClassConditionalOT):
        def pair(self, x_0, x_1, *, generator, labels=None):
            seen.append((x_1, labels))
            return super().pair(x_0, x_1, generator=generator, labels=labels)

    trainer = _trainer(steps=3, coupling="class_conditional", labels=labels)
    trainer.objective.coupling = Spy()
    trainer.fit()
    assert len(seen) == 3
    for x_1, batch_labels in seen:
        assert torch.equal(batch_labels, (x_1[:, 0] > 0).long())
