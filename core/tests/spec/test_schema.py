"""The generated JSON Schema: every component section lists the registered components and params."""

from __future__ import annotations

import json

import pytest

from flowforge.spec.schema import (
    EXPERIMENT,
    experiment_schema,
    generate,
    render,
    stale_schemas,
    write_schemas,
)


@pytest.fixture
def schema(toy_registry):
    return experiment_schema(toy_registry)


def refs(node):
    """Every `$ref` value anywhere in `node`."""
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def options(schema, kind):
    """The bare-name enum (or None) and the `{name, params}` variants by name, of one kind."""
    anyof = schema["$defs"][f"{kind}_component"]["anyOf"]
    names = [o["enum"] for o in anyof if "enum" in o]
    variants = {o["properties"]["name"]["const"]: o for o in anyof if "properties" in o}
    return (names[0] if names else None), variants


def test_output_is_deterministic_sorted_and_newline_terminated(toy_registry):
    first, second = generate(toy_registry), generate(toy_registry)
    assert first == second
    text = first[EXPERIMENT]
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_every_ref_resolves_and_every_def_is_used(schema):
    used = {r.removeprefix("#/$defs/") for r in refs(schema)}
    assert all(r.startswith("#/$defs/") for r in refs(schema))
    assert used == set(schema["$defs"])
    assert "ComponentRef" not in schema["$defs"]


@pytest.mark.parametrize(
    ("kind", "names"),
    [
        ("dataset", ["toy_blobs", "toy_ring"]),
        ("path", ["cond_ot", "edm", "ve", "vp_cosine", "vp_linear"]),
        ("solver", ["euler", "heun", "midpoint", "rk4"]),
        ("guidance", ["toy_cfg", "toy_target"]),
        ("metric", ["toy_energy", "toy_mean"]),
    ],
)
def test_each_kind_lists_its_registered_components(schema, kind, names):
    bare, variants = options(schema, kind)
    assert set(names) <= set(variants)
    assert set(names) - {"toy_target"} <= set(bare)


def test_sections_point_at_their_kind(schema):
    props, defs = schema["properties"], schema["$defs"]
    assert props["data"]["$ref"] == "#/$defs/dataset_component"
    assert props["path"]["$ref"] == "#/$defs/path_component"
    assert props["model"]["$ref"] == "#/$defs/model_component"
    assert props["guidance"]["items"]["$ref"] == "#/$defs/guidance_component"
    assert defs["SampleSpec"]["properties"]["solver"]["$ref"] == "#/$defs/solver_component"
    metrics = defs["EvaluateSpec"]["properties"]["metrics"]
    assert metrics["items"]["$ref"] == "#/$defs/metric_component"


def test_params_schema_is_embedded_closed(schema):
    _, variants = options(schema, "path")
    vp = variants["vp_linear"]
    assert vp["additionalProperties"] is False
    params = vp["properties"]["params"]
    assert params["additionalProperties"] is False
    assert params["properties"]["beta_max"]["exclusiveMinimum"] == 0
    _, datasets = options(schema, "dataset")
    assert datasets["toy_ring"]["properties"]["params"]["properties"] == {}


def test_required_params_make_params_required_and_no_bare_name(schema):
    bare, variants = options(schema, "guidance")
    assert "toy_target" not in bare
    assert variants["toy_target"]["required"] == ["name", "params"]
    assert variants["toy_cfg"]["required"] == ["name"]


def test_model_variants_keep_the_model_fields(schema):
    _, variants = options(schema, "model")
    props = variants["toy_mlp"]["properties"]
    assert set(props) == {"name", "params", "prediction", "checkpoint"}
    assert props["params"]["properties"]["depth"]["maximum"] == 8


def test_a_kind_with_nothing_installed_accepts_nothing(toy_registry):
    empty = type(toy_registry)()
    defs = experiment_schema(empty)["$defs"]
    assert defs["dataset_component"]["not"] == {}


def test_stale_detects_missing_and_changed_files(toy_registry, tmp_path):
    assert stale_schemas(tmp_path, toy_registry) == [tmp_path / EXPERIMENT]
    assert write_schemas(tmp_path, toy_registry) == [tmp_path / EXPERIMENT]
    assert stale_schemas(tmp_path, toy_registry) == []
    path = tmp_path / EXPERIMENT
    path.write_text(path.read_text().replace("toy_ring", "toy_rings"))
    assert stale_schemas(tmp_path, toy_registry) == [path]


def test_render_is_stable_under_key_order():
    assert render({"b": 1, "a": {"d": 2, "c": 3}}) == render({"a": {"c": 3, "d": 2}, "b": 1})
