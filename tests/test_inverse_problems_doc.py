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


def test_the_inverse_problem_spec_validates_and_matches_the_example(fresh_registry):
    import yaml

    from flowforge.spec import validate_document

    section = DOC[DOC.index("## Running an inverse problem from a spec") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "the inverse_problem section lost its spec"
    spec = validate_document(yaml.safe_load(block.group(1)))
    example = Path(__file__).resolve().parents[1] / "examples" / "inverse_problem.yaml"
    full = validate_document(yaml.safe_load(example.read_text()))
    for key in ("task", "data", "operator", "measurement", "guidance", "sample"):
        assert getattr(spec, key) == getattr(full, key), key
