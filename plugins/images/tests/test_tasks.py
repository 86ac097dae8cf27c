"""The image tasks run end to end from the smoke example specs (shortened) and write their files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from flowforge.experiment.progress import make_progress
from flowforge.experiment.runner import execute

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "images"


def run_short(name: str, tmp_path: Path, **overrides) -> tuple[Path, dict]:
    """Run example `name` with 60 training steps (and `overrides` of top-level sections)."""
    spec = yaml.safe_load((EXAMPLES / name).read_text())
    spec["train"].update(steps=60, checkpoint_every=60)
    for key, value in overrides.items():
        spec[key] = {**spec.get(key, {}), **value}
    file = tmp_path / name
    file.write_text(yaml.safe_dump(spec))
    outcome = execute(
        file, output=tmp_path / "runs", device="cpu", progress=make_progress(disable=True)
    )
    return outcome.run.root, outcome.metrics


def test_generation_sweeps_cfg_and_writes_grids_and_splits(tmp_path):
    root, metrics = run_short(
        "generation_smoke.yaml", tmp_path, sample={"num_samples": 100, "batch_size": 100}
    )
    for w in ("0", "1", "2"):
        assert (root / "plots" / f"grid_cfg{w}_nfe10.png").is_file()
        assert math.isfinite(metrics[f"fd_lenet_cfg{w}_nfe10"])
    assert 0 <= metrics["class_accuracy"] <= 1
    splits = json.loads((root / "splits.json").read_text())
    assert splits["test"]["size"] == 300 and sum(splits["test"]["per_class"]) == 300
    assert (root / "samples" / "labels.npy").is_file()


def test_restoration_scores_the_prior_and_the_baselines(tmp_path):
    root, metrics = run_short(
        "restoration_smoke.yaml", tmp_path, measurement={"simulate": {"count": 4}}
    )
    for key in ("psnr_posterior_mean", "psnr_degraded", "ssim_posterior_mean", "ssim_degraded"):
        assert math.isfinite(metrics[key]), key
    assert (root / "plots" / "restoration.png").is_file()
    saved = json.loads((root / "metrics.json").read_text())
    assert saved["psnr_degraded"] == pytest.approx(metrics["psnr_degraded"])
    assert "psnr_posterior_mean" in (root / "report.md").read_text()


def test_editing_writes_edits_for_both_methods(tmp_path):
    root, metrics = run_short(
        "editing_smoke.yaml", tmp_path, task={"params": {"count": 8, "invert_nfe": 10}}
    )
    for method in ("inversion", "sdedit"):
        assert 0 <= metrics[f"edit_accuracy_{method}"] <= 1
        assert (root / "plots" / f"edits_{method}.png").is_file()
    assert metrics["roundtrip_psnr_inversion"] > 15


@pytest.mark.parametrize("name", ["fewstep_reflow_smoke.yaml", "fewstep_distill_smoke.yaml"])
def test_fewstep_student_of_a_conditional_parent_is_class_conditional(tmp_path, name):
    """The core reflow and distill stages carry the parent's labels: the student is sampled
    per class and scored for class accuracy; reflow's stored pairs hold their labels."""
    parent, _ = run_short(
        "generation_smoke.yaml", tmp_path, sample={"num_samples": 100, "batch_size": 100}
    )
    train = {"parent": str(parent)}
    if name.startswith("fewstep_reflow"):
        train["reflow"] = {"pairs": 200, "solver": "rk4", "nfe": 8, "batch_size": 100}
    root, metrics = run_short(
        name, tmp_path, train=train, sample={"num_samples": 100, "batch_size": 100}
    )
    for k in (1, 2, 4):
        assert 0 <= metrics[f"class_accuracy_cfg1_nfe{k}"] <= 1
    assert (root / "samples" / "labels.npy").is_file()
    if name.startswith("fewstep_reflow"):
        from flowforge.training.checkpoint import load_checkpoint

        pairs = load_checkpoint(root / "reflow" / "pairs.pt")
        assert pairs["labels"].shape == (200,) and len(set(pairs["labels"].tolist())) == 10
