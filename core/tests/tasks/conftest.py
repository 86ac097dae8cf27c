"""Tiny inverse-problem specs on the 2-D Gaussian mixture: a few seconds each on a CPU."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

MERGED = ("model", "train", "sample", "output")  # sections that overrides update, not replace


def inverse_doc(root: Path, **sections) -> dict:
    """A valid `inverse_problem` spec document; `sections` replace top-level sections (update
    them, for the `MERGED` ones); `...` deletes a section and None writes a YAML null."""
    doc = {
        "name": "tiny-inverse",
        "seed": 1,
        "task": "inverse_problem",
        "data": {
            "name": "gaussian_mixture_2d",
            "params": {"n_train": 512, "n_val": 0, "n_test": 64, "n_modes": 4},
        },
        "path": "cond_ot",
        "model": {"name": "mlp", "params": {"width": 32, "depth": 2, "time_embed_dim": 8}},
        "train": {
            "steps": 20,
            "batch_size": 64,
            "lr": 3e-3,
            "ema_decay": 0.9,
            "checkpoint_every": 10,
            "log_every": 5,
        },
        "operator": {"name": "mask", "params": {"fraction": 0.5, "noise_std": 0.2}},
        "measurement": {"simulate": {"split": "test", "index": 2, "count": 3, "seed": 4}},
        "guidance": [{"name": "pigdm", "params": {"scale": 1.0}}],
        "sample": {"solver": "euler", "nfe": 10, "num_samples": 48, "batch_size": 32},
        "output": {"dir": str(root / "runs"), "keep_checkpoints": 2},
    }
    for key, value in sections.items():
        if value is ...:
            doc.pop(key, None)
        elif key in MERGED and isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    return copy.deepcopy(doc)


@pytest.fixture
def write_inverse(tmp_path):
    """`write_inverse(**sections) -> Path` of a tiny inverse-problem spec under `tmp_path`."""

    def write(filename: str = "inverse.yaml", **sections) -> Path:
        path = tmp_path / filename
        path.write_text(yaml.safe_dump(inverse_doc(tmp_path, **sections), sort_keys=False))
        return path

    return write
