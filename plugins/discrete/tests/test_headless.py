"""SMILES metrics on a machine where RDKit's drawing module cannot load (no libXrender, as on
headless GPU machines): the plugins load and SMILES quality and FCD still compute."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

SCRIPT = """
import sys
sys.modules["rdkit.Chem.Draw"] = None  # importing it raises ImportError, as without libXrender
from types import SimpleNamespace
import torch
from flowforge import registry
from flowforge_discrete.data import QM9Smiles, QM9SmilesParams
from flowforge_discrete.metrics import FCD, SmilesQuality

assert {"smiles_fcd", "smiles_quality"} <= set(registry.names("metric"))
data = QM9Smiles(QM9SmilesParams(max_molecules=300))
s = data.splits()
ctx = SimpleNamespace(dataset=data, samples=s["test"][:12], test=s["test"][12:],
                      train=s["train"], device=torch.device("cpu"))
quality, fcd = SmilesQuality().compute(ctx), FCD().compute(ctx)["fcd"]
assert quality["smiles_validity"] == 1.0 and fcd == fcd and fcd > 0, (quality, fcd)
print("ok")
"""


@pytest.mark.slow
@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("qm9pack", "rdkit", "fcd_torch")),
    reason="needs the molecules extra: pip install 'flowforge-discrete[molecules]'",
)
def test_smiles_metrics_without_rdkit_drawing():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
