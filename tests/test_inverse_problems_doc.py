"""docs/inverse-problems.md: the exact-posterior example runs as written and shows what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = (Path(__file__).resolve().parents[1] / "docs" / "inverse-problems.md").read_text()


def test_exact_posterior_example_runs():
    block = re.search(r"### Exact posteriors\n.*?```python\n(.*?)```", DOC, re.S)
    assert block, "docs/inverse-problems.md lost its exact-posterior example"
    out = subprocess.run(
        [sys.executable, "-c", block.group(1)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    lines = dict(line.rsplit(" ", 1) for line in out.stdout.splitlines() if "[" not in line)
    assert float(lines["sample mean error"]) < 0.05
    assert lines["Bayes' rule holds"] == "True"
    assert float(lines["noiseless residual"]) < 1e-10
    assert float(lines["projection residual"]) < 1e-10
