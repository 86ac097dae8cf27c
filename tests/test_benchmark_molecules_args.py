"""`benchmarks/molecules.py` arguments checked before any work: the training-time sampler's
params reach the sampler, and bad ones are refused in one line naming the flag."""

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


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ('{"std": -1}', "--time-sampler-params: std: Input should be greater than 0"),
        ("[1]", "--time-sampler-params: expected a JSON object"),
        ('{"bogus": 1}', "--time-sampler-params: bogus: unknown key"),
    ],
)
def test_bad_time_sampler_params_are_refused_in_one_line(params, message, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "molecules.py"),
            "--data",
            "qm9_fixture",
            "--run-dir",
            str(tmp_path / "never"),
            "--time-sampler-params",
            params,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and message in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and not (tmp_path / "never").exists()
