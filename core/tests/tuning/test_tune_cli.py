"""`flowforge tune`: tunes a trained run's model and writes a loadable schedule file."""

from __future__ import annotations

import json

import pytest
import yaml

from flowforge.experiment.runner import execute
from flowforge.tuning import load_schedule

SPEC = {
    "name": "tiny",
    "seed": 0,
    "data": {"name": "two_moons", "params": {"n_train": 512, "n_test": 64}},
    "path": "cond_ot",
    "model": {"name": "mlp", "params": {"width": 16, "depth": 2}, "prediction": "velocity"},
    "train": {"steps": 20, "batch_size": 64, "checkpoint_every": 20, "log_every": 10},
    "sample": {"solver": "heun", "nfe": 5, "num_samples": 16},
}


@pytest.mark.slow
def test_tune_a_run_directory(tmp_path, cli):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(SPEC | {"output": {"dir": str(tmp_path / "runs")}}))
    run = execute(spec, device="cpu").run
    code, out, err = cli(
        "tune", run.root, "--solver", "euler", "--solver", "midpoint", "--nfe", "4",
        "--budget", "200", "--reference-nfe", "80", "--pilots", "16",
    )  # fmt: skip
    assert code == 0, err
    record = json.loads((run.root / "tuned").glob("*-nfe4.json").__next__().read_text())
    assert record["evaluations"] <= 200 and set(record["candidates"]) == {"euler", "midpoint"}
    assert record["error_after"] <= record["error_before"]
    assert load_schedule(run.root / "tuned" / f"{record['solver']}-nfe4.json").shape == (
        5 if record["solver"] == "euler" else 3,
    )
    assert "pilot error" in out


def test_tune_without_a_trained_model_says_what_to_do(tmp_path, cli):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(SPEC | {"output": {"dir": str(tmp_path / "none")}}))
    code, _, err = cli("tune", spec)
    assert code == 2 and "flowforge run" in err
