"""docs/inverse-problems.md, guidance section: the example runs, the specs validate, the table
lists every registered guidance method."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flowforge import registry

DOC = (Path(__file__).resolve().parents[1] / "docs" / "inverse-problems.md").read_text()
SECTION = DOC[DOC.index("## Guidance and posterior sampling") :]


def test_python_example_runs_and_smc_is_closest():
    block = re.search(r"### Python\n\n```python\n(.*?)```", SECTION, re.S)
    assert block, "the guidance section lost its Python example"
    out = subprocess.run(
        [sys.executable, "-c", block.group(1)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    errors = {
        line.split(" ", 1)[0]: ast.literal_eval(line.split(" ", 1)[1])
        for line in out.stdout.splitlines()
    }
    floor = errors.pop("floor")
    assert errors["smc"]["sw"] < 4 * floor["sw"]
    assert min(errors, key=lambda name: errors[name]["sw"]) == "smc"


@pytest.mark.parametrize("block", re.findall(r"```yaml\n(.*?)```", SECTION, re.S))
def test_yaml_guidance_lists_validate(block):
    for i, entry in enumerate(yaml.safe_load(block)["guidance"]):
        registry.get("guidance", entry["name"]).validate(entry.get("params"), f"guidance[{i}]")


def test_methods_table_lists_every_registered_method():
    table = re.search(r"### Methods\n(.*?)\n### ", SECTION, re.S).group(1)
    listed = set(re.findall(r"^\| `(\w+)` \|", table, re.M))
    assert listed == set(registry.names("guidance"))
