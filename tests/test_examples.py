"""Every example spec validates with the installed plugins and points its editor at the schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flowforge.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").rglob("*.yaml"))
SCHEMA_LINE = re.compile(r"# yaml-language-server: \$schema=(\S+)$")


def test_there_are_examples():
    assert EXAMPLES, "examples/ holds no *.yaml spec"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_validates(example, fresh_registry):
    load_spec(example)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_points_at_the_experiment_schema(example):
    first = example.read_text(encoding="utf-8").splitlines()[0]
    match = SCHEMA_LINE.match(first)
    assert match, f"{example.name}: first line must be '# yaml-language-server: $schema=<path>'"
    target = (example.parent / match.group(1)).resolve()
    assert target == ROOT / "schemas" / "experiment.schema.json"
    assert target.is_file(), f"{target} is missing: run `flowforge schema --write`"


@pytest.mark.slow
def test_inverse_problem_example_runs_end_to_end(tmp_path):
    """The inverse-problem example trains its prior, samples every posterior, and its SMC
    samples come close to the exact posterior (the floor: exact samples of the same size)."""
    from flowforge.experiment.progress import make_progress
    from flowforge.experiment.runner import execute

    example = ROOT / "examples" / "inverse_problem.yaml"
    outcome = execute(example, output=tmp_path, device="cpu", progress=make_progress(disable=True))
    run = outcome.run
    for name in (
        "measurement.npy",
        "ground_truth.npy",
        "reconstructions.npy",
        "posterior_mean.npy",
        "posterior_std.npy",
        "metrics.json",
        "report.md",
    ):
        assert (run.root / name).is_file(), name
    metrics = outcome.metrics
    assert metrics["sliced_wasserstein_exact_ratio"] < 2.0, metrics
    assert metrics["residual"] < 2 * metrics["residual_noise_level"], metrics
