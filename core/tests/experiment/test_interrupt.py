"""Real signals against a real `flowforge run` process: SIGINT, SIGTERM and SIGKILL, then resume."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time

import pytest
import torch

from flowforge.experiment import RunDir
from flowforge.experiment.progress import make_progress
from flowforge.experiment.runner import execute
from flowforge.training import CheckpointDir, load_checkpoint

pytestmark = pytest.mark.slow
STEPS = 800


# Trainer options whose state must survive a kill: micro-batches, the EMA warm-up, the
# learning-rate schedule, self-conditioning's draws, and bf16 autocast.
OPTIONS = {
    "plain": {},
    "accumulation-ema_warmup-schedule-self_condition-bf16": {
        "train": {
            "grad_accumulation": 4,
            "ema_warmup": 10,
            "lr_schedule": "cosine",
            "lr_warmup": 20,
            "self_condition": True,
            "precision": "bf16",
        },
        "model": {"params": {"width": 32, "depth": 2, "time_embed_dim": 8, "self_condition": True}},
    },
}


def _long_spec(write_spec, options=None):
    options = options or {}
    train = {"steps": STEPS, "checkpoint_every": 50, "log_every": 50, **options.get("train", {})}
    return write_spec(
        train=train,
        sample={"num_samples": 100},
        evaluate={"metrics": []},
        **{k: v for k, v in options.items() if k != "train"},
    )


def _start(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "flowforge", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_checkpoint(runs_root, min_step, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = RunDir.newest(runs_root, "tiny")
        latest = run and CheckpointDir(run.checkpoints).latest()
        if latest and int(latest.stem.split("_")[1]) >= min_step:
            return run
        if proc.poll() is not None:
            pytest.fail(f"flowforge run ended early:\n{proc.communicate()[1]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no checkpoint appeared")


def _final_weights(run):
    state = load_checkpoint(run.checkpoints / f"step_{STEPS:08d}.pt")
    return {f"{part}.{k}": v for part in ("model", "ema") for k, v in state[part].items()}


def _reference(spec):
    return _final_weights(execute(spec, progress=make_progress(disable=True)).run)


def _resume_matches_reference(args, run, spec):
    """Resume through the CLI; the final weights must equal an uninterrupted run's, bit for bit."""
    resumed = subprocess.run(
        [sys.executable, "-m", "flowforge", *args], capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    got, expected = _final_weights(run), _reference(spec)
    assert all(torch.equal(got[k], expected[k]) for k in expected)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_leaves_a_resumable_checkpoint_and_prints_the_resume_command(write_spec, sig):
    spec = _long_spec(write_spec)
    proc = _start(str(spec), "--device", "cpu")
    run = _wait_for_checkpoint(spec.parent / "runs", 50, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    command = next(line.strip() for line in err.splitlines() if "flowforge run --resume" in line)
    assert shlex.split(command) == [
        "flowforge",
        "run",
        "--resume",
        str(run.root),
        "--device",
        "cpu",
    ]
    step = int(CheckpointDir(run.checkpoints).latest().stem.split("_")[1])
    assert 50 <= step < STEPS and f"step {step} of {STEPS}" in err

    _resume_matches_reference(shlex.split(command)[1:], run, spec)


@pytest.mark.parametrize("options", list(OPTIONS))
def test_sigkill_between_checkpoints_then_resume_is_bit_exact(write_spec, options):
    spec = _long_spec(write_spec, OPTIONS[options])
    proc = _start(str(spec), "--device", "cpu")
    run = _wait_for_checkpoint(spec.parent / "runs", 100, proc)
    time.sleep(0.013)  # somewhere between two checkpoints
    proc.kill()
    proc.communicate(timeout=60)
    _resume_matches_reference(["run", "--resume", str(spec)], run, spec)
