"""`benchmarks/molecules.py` under `torchrun` with two gloo processes: the time budget stops both
after the same step, and from that checkpoint two processes and one process resume and take the
same steps with the same global batch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from flowforge.training import load_checkpoint

pytestmark = pytest.mark.slow  # three launches of the benchmark, two of them with two processes
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "molecules.py"
TINY = "--data qm9_fixture --hidden 16 --layers 2 --batch-size 8 --lr 1e-2 --warmup 0"
EVAL = "--samples 16 --nfe 5 --no-fcd --device cpu"


def _bench(tmp_path, name, *flags, processes=1):
    launcher = [sys.executable]
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    out = tmp_path / f"{name}.json"
    args = [*TINY.split(), *EVAL.split(), "--run-dir", str(tmp_path / name), "--out", str(out)]
    done = subprocess.run(
        [*launcher, str(SCRIPT), *args, *flags],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


def _weights(tmp_path, name, step):
    return load_checkpoint(tmp_path / name / "checkpoints" / f"step_{step:08d}.pt")


def test_two_processes_stop_together_resume_and_train_as_one(tmp_path):
    budget, stdout = _bench(tmp_path, "ddp", "--train-seconds", "2", processes=2)
    steps = budget["training"]["train_steps"]
    assert steps > 0 and budget["training"]["processes"] == 2
    assert [r["nfe"] for r in budget["results"]] == [5]
    assert 0 <= budget["results"][0]["atom_stability"] <= 1
    # the main process alone printed the table and wrote the checkpoint of the last step
    assert stdout.count("wrote ") == 1
    assert [p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir()] == [
        f"step_{steps:08d}.pt"
    ]

    # a few steps on, from the same checkpoint (longer runs drift apart by float rounding)
    shutil.copytree(tmp_path / "ddp", tmp_path / "one")
    end = steps + 4
    resumed, _ = _bench(tmp_path, "ddp", "--max-steps", str(end), processes=2)
    assert resumed["training"]["train_steps"] == end
    single, _ = _bench(tmp_path, "one", "--max-steps", str(end))
    assert single["training"]["train_steps"] == end and single["training"]["processes"] == 1

    got, expected = _weights(tmp_path, "ddp", end), _weights(tmp_path, "one", end)
    for part in ("model", "ema"):
        for name, value in expected[part].items():
            assert torch.allclose(got[part][name], value, rtol=1e-4, atol=1e-5), f"{part}.{name}"
    # not by accident: training moved the weights far from the EMA (near the initial ones)
    assert (
        max((expected["model"][k] - expected["ema"][k]).abs().max() for k in expected["ema"]) > 1e-2
    )
