"""`benchmarks/molecules.py` arguments checked before any work: the training-time sampler's and
the positions' solver's params reach them, and bad ones (or trainer settings) are refused in one
line naming the flag; a run the spike guard stops says which checkpoint it kept."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bench_molecules", BENCH / "molecules.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))


def test_time_sampler_params_reach_the_sampler(bench):
    args = argparse.Namespace(time_sampler="logit_normal", time_sampler_params={"mean": 0.5})
    sampler = bench.time_sampler(args)
    assert (sampler.mean, sampler.std) == (0.5, 1.0)


def test_solver_params_reach_the_solver(bench):
    args = argparse.Namespace(
        solver="reverse_sde", solver_params={"eta": 0.3, "noise": "iid"}, no_ot=True
    )
    solver = bench.position_solver(args)
    assert (solver.name, solver.eta, solver.noise) == ("reverse_sde", 0.3, "iid")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--time-sampler-params", '{"std": -1}'], "--time-sampler-params: std: Input should be"),
        (["--time-sampler-params", "[1]"], "--time-sampler-params: expected a JSON object"),
        (["--time-sampler-params", '{"bogus": 1}'], "--time-sampler-params: bogus: unknown key"),
        (
            ["--solver", "reverse_sde", "--solver-params", '{"eta": -1}'],
            "--solver-params: eta: Input should be greater than or equal to 0",
        ),
        (["--solver-params", '{"eta": 1}'], "--solver-params: eta: unknown key"),
        (["--solver", "reverse_sde"], "--solver reverse_sde: draws noise and reads the model as"),
        (["--lr", "2"], "--lr: Input should be less than or equal to 1"),
        (["--skip-spikes", "1"], "--skip-spikes: Input should be greater than 1"),
        (
            ["--device", "cpu", "--compile-mode", "reduce-overhead"],
            "--compile-mode / --compile: Value error, compile_mode 'reduce-overhead' applies",
        ),
        (["--device", "tpu9"], "--device tpu9: "),
    ],
)
def test_bad_component_params_are_refused_in_one_line(flags, message, tmp_path):
    done = _run("--run-dir", str(tmp_path / "never"), *flags)
    assert done.returncode != 0 and message in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and not (tmp_path / "never").exists()


def test_a_run_the_spike_guard_stops_ends_in_one_message_naming_what_is_kept(tmp_path):
    # lr 1 makes nearly every step a spike above 1.5 times the running means
    tiny = "--layers 2 --hidden 16 --batch-size 8 --lr 1 --warmup 0 --device cpu --samples 0"
    flags = ("--skip-spikes", "1.5", "--snapshot-every", "5", "--max-steps", "300")
    run = tmp_path / "run"
    done = _run(*tiny.split(), "--nfe=", "--run-dir", str(run), "--train-seconds", "120", *flags)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "steps in a row were skipped" in done.stderr
    kept = sorted((run / "checkpoints").iterdir())[-1]
    assert f"kept: {kept} and the EMA snapshots in {run / 'snapshots'}" in done.stderr


def _run(*flags: str) -> subprocess.CompletedProcess:
    """benchmarks/molecules.py on the QM9 fixture with `flags`, on one thread."""
    return subprocess.run(
        [sys.executable, str(BENCH / "molecules.py"), "--data", "qm9_fixture", *flags],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
