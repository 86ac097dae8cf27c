"""`torchrun -m flowforge run` of the discrete smoke spec with two gloo processes: each keeps its
rows of the global batch (`draw(part=...)`), every parameter of the time-independent transformer
takes part in the loss (as DDP requires), and the weights equal a one-process run's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from flowforge.experiment import RunDir
from flowforge.experiment.progress import make_progress
from flowforge.experiment.runner import execute
from flowforge.training import load_checkpoint

SMOKE = Path(__file__).resolve().parents[3] / "examples" / "discrete" / "text_smoke.yaml"
STEPS = 12


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["diffusion", "autoregressive"])
def test_two_processes_train_as_one(tmp_path, objective):
    doc = yaml.safe_load(SMOKE.read_text())
    doc["task"]["params"]["objective"] = objective
    doc["train"].update(steps=STEPS, checkpoint_every=STEPS, grad_accumulation=2)
    doc["evaluate"]["metrics"] = doc["evaluate"]["metrics"][:1]
    doc["sample"].update(num_samples=4, batch_size=4)
    doc["output"]["dir"] = str(tmp_path / "runs")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(doc))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = subprocess.run(
        [*cmd, "-m", "flowforge", "run", str(spec), "--device", "cpu"],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("run directory:") == 1
    run = RunDir.newest(tmp_path / "runs", doc["name"])
    reference = execute(spec, progress=make_progress(disable=True)).run
    got = load_checkpoint(run.checkpoints / f"step_{STEPS:08d}.pt")
    expected = load_checkpoint(reference.checkpoints / f"step_{STEPS:08d}.pt")
    for part in ("model", "ema"):
        for name, value in expected[part].items():
            assert torch.allclose(got[part][name], value, rtol=1e-4, atol=1e-5), f"{part}.{name}"
    samples = (run.samples / "samples.jsonl").read_text()
    assert samples == (reference.samples / "samples.jsonl").read_text()
