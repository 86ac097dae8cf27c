"""Trainer options through `flowforge run`: periodic evaluation, TensorBoard, self-conditioning."""

from __future__ import annotations

import json
import shutil
import sys
import types
from typing import ClassVar

import numpy as np
import pytest

from flowforge.errors import InvalidArgumentError, MissingDependencyError
from flowforge.experiment import RunDir
from flowforge.experiment.progress import make_progress
from flowforge.experiment.runner import execute

SW = {"name": "sliced_wasserstein", "params": {"n_projections": 50, "baseline_repeats": 2}}


def _quiet(spec, **kwargs):
    return execute(spec, progress=make_progress(disable=True), device="cpu", **kwargs)


def test_periodic_evaluation_is_logged_and_redone_identically_on_resume(write_spec):
    spec = write_spec(
        train={"eval_every": 10}, evaluate={"metrics": [SW]}, output={"keep_checkpoints": 5}
    )
    run = _quiet(spec).run
    evals = [r for r in run.read_log() if "eval/sliced_wasserstein" in r]
    assert [r["step"] for r in evals] == [10, 20, 30]
    assert all(np.isfinite(r["eval/sliced_wasserstein_ratio"]) for r in evals)
    killed = RunDir(run.root.with_name("killed"))
    shutil.copytree(run.root, killed.root)
    for ckpt in killed.checkpoints.iterdir():
        if ckpt.name != "step_00000010.pt":
            ckpt.unlink()
    resumed = _quiet(killed.root, resume=True).run
    assert resumed.read_log() == run.read_log()


class FakeWriter:
    """Stands in for `torch.utils.tensorboard.SummaryWriter` (TensorBoard is optional)."""

    made: ClassVar[list[FakeWriter]] = []

    def __init__(self, log_dir, purge_step=None):
        self.log_dir, self.purge_step, self.scalars, self.closed = log_dir, purge_step, [], False
        FakeWriter.made.append(self)

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def close(self):
        self.closed = True


def test_tensorboard_gets_the_log_when_asked(write_spec, monkeypatch):
    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    FakeWriter.made.clear()
    run = _quiet(write_spec(train={"tensorboard": True, "eval_every": 15})).run
    (writer,) = FakeWriter.made
    assert writer.log_dir == str(run.root / "tensorboard") and writer.closed
    assert writer.purge_step is None
    tags = {tag for tag, _, _ in writer.scalars}
    assert {"train/loss", "train/lr", "train/nonfinite", "eval/nll"} <= tags
    losses = [(s, v) for tag, v, s in writer.scalars if tag == "train/loss"]
    assert losses == [(r["step"], r["loss"]) for r in run.read_log() if "loss" in r]


def test_tensorboard_missing_is_an_install_hint_before_training(write_spec, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(MissingDependencyError, match="pip install tensorboard"):
        _quiet(write_spec(train={"tensorboard": True}))


def test_a_self_conditioned_model_trains_and_samples(write_spec):
    params = {"width": 32, "depth": 2, "time_embed_dim": 8, "self_condition": True}
    spec = write_spec(model={"params": params}, train={"self_condition": True})
    outcome = _quiet(spec)
    assert all(np.isfinite(v) for v in outcome.metrics.values())
    with pytest.raises(InvalidArgumentError, match=r"train\.self_condition is false"):
        _quiet(write_spec("mismatch.yaml", model={"params": params}))


def test_skipped_spikes_reach_the_log_and_metrics(write_spec):
    """So tight a guard (1.02 times the running means) that ordinary steps count as spikes."""
    run = _quiet(write_spec(train={"skip_spikes": 1.02, "max_nonfinite": 30})).run
    logged = [r["spikes"] for r in run.read_log() if "spikes" in r]
    assert len(logged) == 6 and logged == sorted(logged) and logged[-1] > 0
    metrics = json.loads(run.metrics_path.read_text())
    assert metrics["train_spike_steps"] == logged[-1] and metrics["train_nonfinite_steps"] == 0
    plain = _quiet(write_spec("plain.yaml")).run
    assert json.loads(plain.metrics_path.read_text())["train_spike_steps"] == 0
    assert all("spikes" not in r for r in plain.read_log())
