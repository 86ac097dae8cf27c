"""`flowforge schema`: print, --write and --check (exit 1 naming the stale file and the fix)."""

from __future__ import annotations

import json

import pytest

from flowforge.spec.schema import EXPERIMENT

pytestmark = pytest.mark.usefixtures("core_only")


def test_check_fails_on_missing_then_passes_after_write(cli, tmp_path):
    code, _, err = cli("schema", "--check", "--dir", tmp_path)
    assert code == 1
    assert f"{tmp_path / EXPERIMENT} is missing" in err
    assert f"flowforge schema --write --dir {tmp_path}" in err
    code, out, _ = cli("schema", "--write", "--dir", tmp_path)
    assert code == 0 and f"wrote {tmp_path / EXPERIMENT}" in out
    assert cli("schema", "--check", "--dir", tmp_path)[0] == 0


def test_check_fails_on_an_edited_file(cli, tmp_path):
    cli("schema", "--write", "--dir", tmp_path)
    path = tmp_path / EXPERIMENT
    path.write_text(path.read_text().replace('"type": "integer"', '"type": "number"', 1))
    code, _, err = cli("schema", "--check", "--dir", tmp_path)
    assert code == 1
    assert f"{path} is out of date" in err


def test_print_gives_the_schema_on_stdout(cli, tmp_path):
    code, out, _ = cli("schema")
    assert code == 0
    schema = json.loads(out)
    cli("schema", "--write", "--dir", tmp_path)
    assert out == (tmp_path / EXPERIMENT).read_text()
    assert "cond_ot" in schema["$defs"]["path_component"]["anyOf"][0]["enum"]
