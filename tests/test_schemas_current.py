"""The committed JSON Schemas equal the ones generated from the models and installed plugins."""

from __future__ import annotations

from pathlib import Path

from flowforge.spec.schema import generate, stale_schemas

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def test_committed_schemas_are_current(fresh_registry):
    stale = stale_schemas(SCHEMAS, fresh_registry)
    assert not stale, f"stale: {', '.join(map(str, stale))}. Fix: flowforge schema --write"


def test_no_extra_schema_files(fresh_registry):
    extra = {p.name for p in SCHEMAS.glob("*.json")} - set(generate(fresh_registry))
    assert not extra, f"{sorted(extra)} in schemas/ are not generated any more: delete them"
