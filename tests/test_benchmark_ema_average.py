"""`benchmarks/ema_weights.py average`: the mean of snapshot weights files of one run, written as
a weights file `--weights` reads; files of another architecture are refused in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def ema_weights():
    sys.path.insert(0, str(BENCH))
    try:
        import ema_weights

        yield ema_weights
    finally:
        sys.path.remove(str(BENCH))


def _args(hidden):
    flags = dict(state="product", discrete_path="masked", hidden=hidden, layers=2)
    return SimpleNamespace(**flags, self_condition=True)


ENC = SimpleNamespace(elements=("H", "C"), charges=(0,))


def _write(ema_weights, path, step, hidden=4, seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.BatchNorm1d(hidden))
    net(torch.randn(5, 3))  # a training forward: moves the running stats, counts a batch
    state = net.state_dict()
    state["1.num_batches_tracked"] += step
    budget = {"train_steps": step, "train_seconds_total": float(step)}
    ema_weights.save_state(path, _args(hidden), ENC, state, budget)
    return state


def test_the_average_is_the_mean_of_the_snapshots(ema_weights, tmp_path):
    files = [tmp_path / f"ema_{s}.pt" for s in (10, 20, 30)]
    states = [_write(ema_weights, f, s, seed=s) for f, s in zip(files, (10, 20, 30), strict=True)]
    out = tmp_path / "mean.pt"
    done = subprocess.run(
        [sys.executable, str(BENCH / "ema_weights.py"), "average", str(out), *map(str, files)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "mean of steps [10, 20, 30]" in done.stdout

    blob = ema_weights.read(out)
    for key in ("0.weight", "0.bias", "1.running_mean"):
        expected = sum(s[key] for s in states) / 3
        assert torch.allclose(blob["ema"][key], expected, atol=1e-7), key
        assert not torch.allclose(blob["ema"][key], states[-1][key])
    # a count is not averaged: the last snapshot's is kept
    assert blob["ema"]["1.num_batches_tracked"] == states[-1]["1.num_batches_tracked"]
    assert blob["training"]["train_steps"] == 30
    assert blob["training"]["averaged_steps"] == [10, 20, 30]
    assert blob["architecture"] == ema_weights.architecture(_args(4), ENC)

    # and `load` takes it as any weights file
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    budget = ema_weights.load(out, _args(4), ENC, net)
    assert budget["averaged_steps"] == [10, 20, 30]
    assert torch.equal(net.state_dict()["0.weight"], blob["ema"]["0.weight"])


def test_files_of_another_architecture_are_refused(ema_weights, tmp_path):
    _write(ema_weights, tmp_path / "a.pt", 10)
    _write(ema_weights, tmp_path / "b.pt", 20, hidden=6)
    with pytest.raises(SystemExit, match=r"b\.pt has another architecture than .*a\.pt"):
        ema_weights.average([tmp_path / "a.pt", tmp_path / "b.pt"], tmp_path / "out.pt")
    with pytest.raises(SystemExit, match="at least two"):
        ema_weights.average([tmp_path / "a.pt"], tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()
