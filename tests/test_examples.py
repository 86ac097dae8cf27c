"""Every example spec validates with the installed plugins and points its editor at the schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flowforge.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").rglob("*.yaml"))
SCHEMA_LINE = re.compile(r"# yaml-language-server: \$schema=(\S+)$")


def test_there_are_examples():
    assert EXAMPLES, "examples/ holds no *.yaml spec"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_validates(example, fresh_registry):
    load_spec(example)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_points_at_the_experiment_schema(example):
    first = example.read_text(encoding="utf-8").splitlines()[0]
    match = SCHEMA_LINE.match(first)
    assert match, f"{example.name}: first line must be '# yaml-language-server: $schema=<path>'"
    target = (example.parent / match.group(1)).resolve()
    assert target == ROOT / "schemas" / "experiment.schema.json"
    assert target.is_file(), f"{target} is missing: run `flowforge schema --write`"
