"""`flowforge run` on the discrete examples: diffusion and the autoregressive baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from flowforge.errors import SpecError
from flowforge.experiment.runner import execute
from flowforge.spec import load_spec

ROOT = Path(__file__).resolve().parents[3]
SMOKE = ROOT / "examples" / "discrete" / "text_smoke.yaml"


def test_examples_validate():
    for spec in (ROOT / "examples" / "discrete").glob("*.yaml"):
        assert load_spec(spec).task.name == "discrete_generate"


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["diffusion", "autoregressive"])
def test_smoke_run_writes_samples_and_metrics(tmp_path, objective):
    doc = yaml.safe_load(SMOKE.read_text())
    doc["task"]["params"]["objective"] = objective
    doc["train"]["steps"] = 10
    doc["evaluate"]["metrics"] = doc["evaluate"]["metrics"][:2]
    if objective == "autoregressive":
        doc["model"]["params"]["time_input"] = True
        doc["sample"]["solver"] = "ancestral"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(doc))
    outcome = execute(spec, output=tmp_path / "runs", device="cpu")
    metrics = json.loads(outcome.run.metrics_path.read_text())
    assert metrics["nll_bits_per_token"] > 0 and metrics["train_steps"] == 10
    assert metrics["nll_num_timesteps"] == (2 if objective == "diffusion" else 0)
    lines = (outcome.run.samples / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 16 and all(len(json.loads(s)) == 32 for s in lines)


def test_remasking_on_a_uniform_path_is_refused_at_validation(tmp_path):
    doc = yaml.safe_load(SMOKE.read_text())
    doc["path"] = {"name": "uniform"}
    doc["sample"]["solver"] = {"name": "ancestral", "params": {"eta": 1.0}}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match=r"sample\.solver\.params\.eta.*masked path"):
        execute(spec, output=tmp_path / "runs", device="cpu")
