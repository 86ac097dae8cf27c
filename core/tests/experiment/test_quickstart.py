"""The quickstart example keeps its promise: near-baseline samples within the CPU budget."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from flowforge.experiment.progress import make_progress
from flowforge.experiment.runner import execute

QUICKSTART = Path(__file__).parents[3] / "examples" / "quickstart.yaml"


@pytest.mark.slow
def test_quickstart_is_within_twice_the_sampling_noise_baseline(tmp_path):
    start = time.perf_counter()
    outcome = execute(
        QUICKSTART, output=tmp_path, device="cpu", progress=make_progress(disable=True)
    )
    seconds = time.perf_counter() - start
    metrics = outcome.metrics
    assert metrics["sliced_wasserstein"] < 2 * metrics["sliced_wasserstein_baseline"], metrics
    assert 0.0 < metrics["nll"] < 2.0, metrics  # two moons, noise 0.1: about 1.07 nats
    assert seconds < 180, f"quickstart took {seconds:.0f} s; the budget is 3 minutes on 2 cores"
