"""A tiny spec that trains, samples and evaluates in a couple of seconds on a CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


def tiny_spec(root: Path, **sections) -> dict:
    spec = {
        "name": "tiny",
        "seed": 3,
        "data": {"name": "two_moons", "params": {"n_train": 512, "n_val": 0, "n_test": 200}},
        "path": "cond_ot",
        "model": {"name": "mlp", "params": {"width": 32, "depth": 2, "time_embed_dim": 8}},
        "train": {
            "steps": 30,
            "batch_size": 64,
            "lr": 3e-3,
            "ema_decay": 0.9,
            "checkpoint_every": 10,
            "log_every": 5,
        },
        "sample": {"solver": "rk4", "nfe": 8, "num_samples": 200, "batch_size": 128},
        "evaluate": {
            "metrics": [
                {
                    "name": "sliced_wasserstein",
                    "params": {"n_projections": 50, "baseline_repeats": 2},
                },
                {"name": "nll", "params": {"nfe": 8, "max_points": 50}},
            ]
        },
        "output": {"dir": str(root / "runs"), "keep_checkpoints": 2},
    }
    for key, value in sections.items():
        spec[key] = {**spec[key], **value} if isinstance(value, dict) else value
    return spec


@pytest.fixture
def write_spec(tmp_path):
    """`write_spec(**section_overrides) -> Path` of a tiny spec file under `tmp_path`."""

    def write(filename: str = "spec.yaml", **sections) -> Path:
        path = tmp_path / filename
        path.write_text(yaml.safe_dump(tiny_spec(tmp_path, **sections)))
        return path

    return write
