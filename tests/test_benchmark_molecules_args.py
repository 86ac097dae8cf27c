"""`benchmarks/molecules.py` arguments checked before any work: the training-time sampler's and
the positions' solver's params reach them, and bad ones are refused in one line naming the
flag."""

from __future__ import annotations

import argparse
import importlib.util
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
    ],
)
def test_bad_component_params_are_refused_in_one_line(flags, message, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "molecules.py"),
            "--data",
            "qm9_fixture",
            "--run-dir",
            str(tmp_path / "never"),
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and message in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and not (tmp_path / "never").exists()
