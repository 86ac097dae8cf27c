"""The README's examples run as written and show the real quickstart spec."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_python_example_runs_and_makes_exactly_the_promised_calls():
    block = re.search(r"## From Python\n\n```python\n(.*?)```", README, re.S)
    assert block, "README.md lost its '## From Python' example"
    out = subprocess.run(
        [sys.executable, "-c", block.group(1)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "40"


def test_quickstart_spec_in_readme_is_the_example_file():
    block = re.search(r"```yaml\n(.*?)```", README, re.S)
    assert block and block.group(1) == (ROOT / "examples" / "quickstart.yaml").read_text()
