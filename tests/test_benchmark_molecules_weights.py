"""`benchmarks/molecules.py` scoring without training: `--train-seconds 0` reads the newest
checkpoint's EMA weights and `--weights` a file written by `--save-weights`; both give the same
samples as the run that trained them, and so does a `--time-grid` file of the same times; a
mismatch, a truncated file, a missing checkpoint or a short grid is refused with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow  # eleven launches of the benchmark on the fixture
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "molecules.py"
TINY = "--data qm9_fixture --layers 2 --batch-size 8 --lr 1e-2 --warmup 0 --device cpu"
EVAL = "--samples 24 --nfe 6 --no-fcd --discrete-eta 3"


def _bench(tmp_path, name, *flags, hidden=16, ok=True):
    out = tmp_path / f"{name}.json"
    args = [*TINY.split(), *EVAL.split(), "--hidden", str(hidden), "--out", str(out), *flags]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (done.returncode == 0) == ok, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text()) if ok else done.stderr


def _scores(result):
    keys = ("atom_stability", "mol_stability", "validity", "valid_and_unique")
    return [{k: r[k] for k in keys} for r in result["results"]]


def test_scoring_from_weights_or_checkpoint_reproduces_the_trained_run(tmp_path):
    run, weights = tmp_path / "run", tmp_path / "ema.pt"
    flags = ("--run-dir", str(run), "--max-steps", "6", "--train-seconds", "120")
    trained = _bench(tmp_path, "trained", *flags, "--save-weights", str(weights))
    assert trained["training"]["train_steps"] == 6
    # not by accident: the tiny model leaves some atoms unstable, so the scores can differ
    assert 0 < trained["results"][0]["atom_stability"] < 1

    from_file = _bench(tmp_path, "file", "--weights", str(weights))
    from_run = _bench(tmp_path, "run", "--run-dir", str(run), "--train-seconds", "0")
    assert _scores(from_file) == _scores(trained) == _scores(from_run)
    assert from_file["training"]["train_steps"] == from_run["training"]["train_steps"] == 6
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000006.pt"]

    # a grid file of the uniform times samples exactly as the named grid; a wrong one is refused
    grid = tmp_path / "times.json"
    grid.write_text(json.dumps(torch.linspace(0, 1, 7).tolist()))
    from_grid = _bench(tmp_path, "grid", "--weights", str(weights), "--time-grid", str(grid))
    assert _scores(from_grid) == _scores(trained)
    # and the file's times are the ones used: a grid crowded at the noise end samples otherwise
    skewed = [(i / 6) ** 3 for i in range(7)]
    grid.write_text(json.dumps(skewed))
    from_skewed = _bench(tmp_path, "skewed", "--weights", str(weights), "--time-grid", str(grid))
    assert from_skewed["config"]["grid_times"] == skewed
    assert _scores(from_skewed) != _scores(trained)
    grid.write_text(json.dumps([0.0, 0.5, 1.0]))
    err = _bench(tmp_path, "short", "--weights", str(weights), "--time-grid", str(grid), ok=False)
    assert "needs 7 increasing times from 0 to 1 (dpm_solver_pp takes 6 steps for NFE 6)" in err
    assert "Traceback" not in err
    # checked before training: a run directory is never made
    flags = ("--run-dir", str(tmp_path / "never"), "--time-grid", str(grid), "--nfe", "6,8")
    err = _bench(tmp_path, "two", *flags, ok=False)
    assert "a grid file needs exactly one --nfe" in err and not (tmp_path / "never").exists()
    err = _bench(tmp_path, "wide", "--weights", str(weights), hidden=32, ok=False)
    assert "trained with --hidden 16, this run has 32" in err and "Traceback" not in err
    err = _bench(tmp_path, "sc", "--weights", str(weights), "--self-condition", ok=False)
    assert "trained with --self-condition False, this run has True" in err
    (tmp_path / "bad.pt").write_bytes(weights.read_bytes()[:1000])
    err = _bench(tmp_path, "bad", "--weights", str(tmp_path / "bad.pt"), ok=False)
    assert "not a readable weights file" in err and "Traceback" not in err
    empty = tmp_path / "empty"
    err = _bench(tmp_path, "none", "--run-dir", str(empty), "--train-seconds", "0", ok=False)
    assert "no checkpoint in" in err and "--train-seconds > 0" in err


def test_snapshots_hold_the_ema_weights_of_their_step(tmp_path):
    run = tmp_path / "run"
    flags = ("--run-dir", str(run), "--max-steps", "6", "--train-seconds", "120")
    trained = _bench(tmp_path, "trained", *flags, "--snapshot-every", "3")
    snaps = run / "snapshots"
    assert sorted(p.name for p in snaps.iterdir()) == ["ema_00000003.pt", "ema_00000006.pt"]
    last = _bench(tmp_path, "last", "--weights", str(snaps / "ema_00000006.pt"))
    assert _scores(last) == _scores(trained) and last["training"]["train_steps"] == 6
    early = _bench(tmp_path, "early", "--weights", str(snaps / "ema_00000003.pt"))
    assert early["training"]["train_steps"] == 3
    a, b = (torch.load(snaps / n, weights_only=True)["ema"] for n in sorted(os.listdir(snaps)))
    assert any(not torch.equal(a[k], b[k]) for k in a), "the two snapshots hold other weights"
    err = _bench(tmp_path, "neg", "--snapshot-every", "-1", ok=False)
    assert "--snapshot-every must be 0 (none) or a positive step count" in err
