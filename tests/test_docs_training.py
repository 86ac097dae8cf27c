"""docs/training.md's examples run as written: the complete spec and the Python example; the
averaged-checkpoints model section is a valid one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from flowforge.experiment.progress import make_progress
from flowforge.experiment.runner import execute
from flowforge.spec import load_spec
from flowforge.spec.models import ModelSpec

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")


def _block(heading: str, language: str) -> str:
    found = re.search(rf"## {heading}\n.*?```{language}\n(.*?)```", DOC, re.S)
    assert found, f"docs/training.md lost its '## {heading}' {language} block"
    return found.group(1)


def test_complete_spec_runs(tmp_path):
    spec_file = tmp_path / "moons-ot.yaml"
    spec_file.write_text(_block("A complete spec", "yaml"), encoding="utf-8")
    spec = load_spec(spec_file)
    assert (spec.train.coupling.name, spec.train.time_sampler.name) == ("exact_ot", "logit_normal")
    outcome = execute(
        spec_file, output=tmp_path / "runs", device="cpu", progress=make_progress(disable=True)
    )
    metrics = json.loads(outcome.run.metrics_path.read_text())
    assert metrics["train_steps"] == spec.train.steps and metrics["train_nonfinite_steps"] == 0
    assert metrics["sliced_wasserstein_ratio"] < 5


def test_python_example_runs():
    out = subprocess.run(
        [sys.executable, "-c", _block("From Python", "python")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"OMP_NUM_THREADS": "1", "PATH": ""},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "50"


def _chain_blocks() -> list[str]:
    section = DOC.split("## A reflow and distillation chain", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```yaml\n(.*?)```", section, re.S)


def test_reflow_and_distillation_chain_runs(tmp_path, monkeypatch):
    """The three specs run in order from one directory, each stage reading its parent by spec
    file; reflow's two Euler steps beat its parent's, and so does the distilled single step."""
    blocks = _chain_blocks()
    assert len(blocks) == 3, "docs/training.md: the chain has three specs"
    monkeypatch.chdir(tmp_path)
    metrics = {}
    for text in blocks:
        name = load_spec_text(text, tmp_path).name
        outcome = execute(f"{name}.yaml", device="cpu", progress=make_progress(disable=True))
        metrics[name] = json.loads(outcome.run.metrics_path.read_text())
    base, reflow, distill = (metrics[n] for n in ("moons-base", "moons-reflow", "moons-distill"))
    assert reflow["reflow_pairs"] == 5000 and distill["distill_rounds"] == 2
    # measured: 0.32 (base, 2 Euler steps), 0.11 (reflow, 2 steps), 0.11 (distilled, 1 step)
    assert reflow["sliced_wasserstein"] < 0.6 * base["sliced_wasserstein"]
    assert distill["sliced_wasserstein"] < 0.6 * base["sliced_wasserstein"]


def load_spec_text(text: str, directory: Path):
    """Save a docs spec as `<name>.yaml` in `directory` and load it."""
    name = re.search(r"^name: (\S+)$", text, re.M).group(1)
    path = directory / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return load_spec(path)


def test_the_averaged_checkpoints_example_is_a_valid_model_section():
    section = DOC.split("**The mean of several checkpoints' EMA weights.**", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    model = ModelSpec(**yaml.safe_load(block)["model"])
    assert len(model.checkpoint) == 4 and all(c.endswith(".pt") for c in model.checkpoint)
