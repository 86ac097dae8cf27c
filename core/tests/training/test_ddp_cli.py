"""`torchrun -m flowforge run` with two gloo processes: killed with SIGKILL between checkpoints,
resumed, and compared with an uninterrupted single-process run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from flowforge.experiment import RunDir
from flowforge.experiment.progress import make_progress
from flowforge.experiment.runner import execute
from flowforge.training import CheckpointDir, load_checkpoint

pytestmark = pytest.mark.slow
STEPS = 200


def _spec(tmp_path):
    spec = {
        "name": "ddp",
        "seed": 5,
        "data": {"name": "two_moons", "params": {"n_train": 512, "n_val": 0, "n_test": 200}},
        "path": "cond_ot",
        "model": {"name": "mlp", "params": {"width": 32, "depth": 2, "time_embed_dim": 8}},
        "train": {
            "steps": STEPS,
            "batch_size": 64,
            "grad_accumulation": 2,
            "lr": 3e-3,
            "ema_decay": 0.9,
            "checkpoint_every": 20,
            "log_every": 20,
        },
        "sample": {"solver": "euler", "nfe": 4, "num_samples": 100, "batch_size": 32},
        "evaluate": {"metrics": []},
        "output": {"dir": str(tmp_path / "runs"), "keep_checkpoints": 2, "plots": False},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _torchrun(*args, **kwargs):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return [*cmd, "-m", "flowforge", "run", *args, "--device", "cpu"], env


def _kill_all(pid):
    """SIGKILL torchrun and its workers (each worker runs in a session of its own)."""
    children = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as fh:
            children += [int(c) for c in fh.read().split()]
    for child in children:
        os.killpg(child, signal.SIGKILL)
    os.killpg(pid, signal.SIGKILL)


def _latest_step(root):
    run = RunDir.newest(root, "ddp")
    latest = run and CheckpointDir(run.checkpoints).latest()
    return (run, int(latest.stem.split("_")[1])) if latest else (run, -1)


def test_torchrun_killed_with_sigkill_resumes_and_matches_one_process(tmp_path):
    spec = _spec(tmp_path)
    cmd, env = _torchrun(str(spec))
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 240
    while _latest_step(tmp_path / "runs")[1] < 60:
        if proc.poll() is not None:
            pytest.fail(f"torchrun ended early:\n{proc.communicate()[1].decode()[-3000:]}")
        if time.monotonic() > deadline:
            _kill_all(proc.pid)
            pytest.fail("no checkpoint appeared")
        time.sleep(0.05)
    time.sleep(0.013)  # somewhere between two checkpoints
    _kill_all(proc.pid)
    proc.communicate(timeout=60)
    run, step = _latest_step(tmp_path / "runs")
    assert 60 <= step < STEPS
    # one run directory: only the main process created it
    assert len(list((tmp_path / "runs" / "ddp").iterdir())) == 1

    cmd, env = _torchrun("--resume", str(run.root))
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # the metrics table is printed once, by the main process
    assert resumed.stdout.count("run directory:") == 1

    reference = execute(spec, progress=make_progress(disable=True)).run
    got = load_checkpoint(run.checkpoints / f"step_{STEPS:08d}.pt")
    expected = load_checkpoint(reference.checkpoints / f"step_{STEPS:08d}.pt")
    for part in ("model", "ema"):
        for name, value in expected[part].items():
            assert torch.allclose(got[part][name], value, rtol=1e-4, atol=1e-5), f"{part}.{name}"
    steps = [r["step"] for r in run.read_log() if "loss" in r]
    assert steps == list(range(20, STEPS + 1, 20))
    assert (run.samples).is_dir() and (run.root / "metrics.json").is_file()
