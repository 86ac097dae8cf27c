"""Loading fills in every component's params; the dumped spec validates back to the same spec."""

from __future__ import annotations

import pytest

from flowforge.spec import (
    ExperimentSpec,
    dump_spec,
    load_spec,
    parse_spec,
    read_yaml,
    validate_document,
)

pytestmark = pytest.mark.usefixtures("toys")


def test_dump_then_load_gives_the_same_spec(write_spec, valid_doc, tmp_path):
    spec = load_spec(write_spec(valid_doc))
    dumped = tmp_path / "resolved.yaml"
    dumped.write_text(dump_spec(spec), encoding="utf-8")
    again = load_spec(dumped)
    assert again == spec
    assert dump_spec(again) == dump_spec(spec)


def test_params_are_resolved_with_every_default(valid_doc):
    spec = validate_document(valid_doc)
    assert spec.data.params == {"n": 64, "std": 0.5, "centers": 3}
    assert spec.path.params == {"beta_min": 0.1, "beta_max": 20.0, "eps": 0.001}
    assert spec.model.params == {"hidden": 16, "depth": 2, "activation": "silu"}
    assert spec.sample.solver.params == {}
    assert spec.guidance[0].params == {"scale": 2.0}
    assert [m.params for m in spec.evaluate.metrics] == [{}, {"projections": 4}]


def test_defaulted_sections_are_resolved_too(valid_doc):
    for section in ("sample", "train", "guidance", "evaluate", "output"):
        del valid_doc[section]
    spec = validate_document(valid_doc)
    assert spec.sample.solver.name == "rk4"
    assert spec.evaluate.metrics == []


def test_dump_is_explicit_plain_yaml(valid_doc):
    text = dump_spec(validate_document(valid_doc))
    doc = read_yaml(text)
    assert doc["path"] == {
        "name": "vp_linear",
        "params": {"beta_min": 0.1, "beta_max": 20.0, "eps": 0.001},
    }
    assert doc["sample"]["t_span"] == [0.0, 0.99]
    assert doc["train"]["grad_clip"] == 1.0
    assert list(doc) == list(ExperimentSpec.model_fields)  # every section, defaults included
    assert doc["task"] == {"name": "generate", "params": {}}
    assert doc["operator"] is None and doc["measurement"] is None


def test_bare_name_and_null_params_mean_defaults(valid_doc):
    valid_doc["data"] = {"name": "toy_blobs", "params": None}
    spec = parse_spec(dump_spec(validate_document(valid_doc)))
    assert spec.data.params == {"n": 128, "std": 0.5, "centers": 3}
