"""The inverse_problem task in specs: what validates, and errors located at the offending field."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from flowforge.cli import main
from flowforge.errors import SpecError
from flowforge.spec import dump_spec, parse_spec, validate_document
from flowforge.spec.schema import experiment_schema

from .conftest import inverse_doc

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "inverse_problem.yaml"

pytestmark = pytest.mark.usefixtures("fresh_registry")


def problems(doc: dict) -> dict[str, str]:
    """`location -> message` of every problem `validate_document` finds in `doc`."""
    with pytest.raises(SpecError) as info:
        validate_document(doc)
    return dict(info.value.issues)


def test_a_valid_spec_resolves_and_round_trips(tmp_path):
    spec = validate_document(inverse_doc(tmp_path))
    assert spec.task.name == "inverse_problem"
    assert spec.task.params == {"data_range": None, "n_projections": 500}
    assert spec.operator.params["noise_std"] == 0.2 and spec.operator.params["seed"] == 0
    assert spec.measurement.simulate.count == 3 and spec.measurement.file is None
    assert spec.guidance[0].params == {"scale": 1.0, "prior_var": 1.0}  # no Python-only input
    assert parse_spec(dump_spec(spec)) == spec


def test_a_spec_without_task_is_a_generate_spec(tmp_path):
    doc = inverse_doc(tmp_path, task=..., operator=..., measurement=..., guidance=[])
    assert validate_document(doc).task.name == "generate"


@pytest.mark.parametrize(
    ("change", "location", "text"),
    [
        ({"operator": ...}, "operator", "needs the operator A of y = A x + noise"),
        ({"measurement": ...}, "measurement", "simulate: {split: test"),
        ({"guidance": [{"name": "cfg", "params": {"scale": 2.0}}]}, "guidance", "pigdm"),
        ({"guidance": []}, "guidance", "without one the samples ignore the measurement"),
        (
            {"evaluate": {"metrics": ["sliced_wasserstein"]}},
            "evaluate.metrics",
            "computes its own metrics",
        ),
    ],
)
def test_missing_sections_are_named(tmp_path, change, location, text):
    found = problems(inverse_doc(tmp_path, **change))
    assert text in found[location], found


def test_every_missing_section_is_reported_at_once(tmp_path):
    found = problems(inverse_doc(tmp_path, operator=..., measurement=..., guidance=[]))
    assert {"operator", "measurement", "guidance"} <= set(found)


@pytest.mark.parametrize(
    ("measurement", "location", "text"),
    [
        ({"file": "y.npy", "simulate": {}}, "measurement", "got both"),
        ({}, "measurement", "got neither"),
        ({"file": "y.csv"}, "measurement.file", "should match pattern"),
        ({"simulate": {"split": "train"}}, "measurement.simulate.split", "'test' or 'val'"),
        ({"simulate": {"count": 0}}, "measurement.simulate.count", "greater than or equal to 1"),
        ({"simulate": {"seeds": 1}}, "measurement.simulate.seeds", "did you mean 'seed'"),
    ],
)
def test_bad_measurement_sections(tmp_path, measurement, location, text):
    doc = inverse_doc(tmp_path)
    doc["measurement"] = measurement
    found = problems(doc)
    assert text in found[location], found


def test_operator_names_and_params_are_checked_like_any_component(tmp_path):
    found = problems(inverse_doc(tmp_path, operator={"name": "maks"}))
    assert "unknown operator 'maks'. Did you mean 'mask'?" in found["operator.name"]
    found = problems(
        inverse_doc(tmp_path, operator={"name": "mask", "params": {"noise_std": -1.0}})
    )
    assert "greater than or equal to 0" in found["operator.params.noise_std"]


def test_smc_populations_must_divide_the_samples(tmp_path):
    guidance = [{"name": "smc", "params": {"particles": 20}}]
    found = problems(inverse_doc(tmp_path, guidance=guidance))
    assert "multiples of 20" in found["sample.num_samples"]
    fits = {"num_samples": 40, "batch_size": 20}
    assert validate_document(inverse_doc(tmp_path, guidance=guidance, sample=fits))


def test_generate_refuses_inverse_problem_sections(tmp_path):
    found = problems(inverse_doc(tmp_path, task="generate"))
    assert "the generate task has no use for `operator`" in found["operator"]
    assert "set `task: inverse_problem`" in found["measurement"]
    assert "'pigdm' conditions on a measurement" in found["guidance[0]"]


def test_unknown_task_is_named(tmp_path):
    found = problems(inverse_doc(tmp_path, task="inverse_problems"))
    assert "Did you mean 'inverse_problem'?" in found["task.name"]


def test_flowforge_validate_reports_the_fields(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(inverse_doc(tmp_path, operator=..., guidance=[])))
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(bad)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "2 problems" in err
    assert "operator: the inverse_problem task needs the operator" in err
    assert "guidance: list at least one posterior guidance" in err


def test_the_schema_accepts_resolved_specs_and_refuses_two_sources(tmp_path, fresh_registry):
    schema = experiment_schema(fresh_registry)
    resolved = yaml.safe_load(dump_spec(validate_document(inverse_doc(tmp_path))))
    jsonschema.validate(resolved, schema)
    jsonschema.validate(yaml.safe_load(EXAMPLE.read_text()), schema)
    both = inverse_doc(tmp_path, measurement={"file": "y.npy", "simulate": {"count": 2}})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(both, schema)
    bad_operator = inverse_doc(tmp_path, operator={"name": "mask", "params": {"fractio": 0.5}})
    with pytest.raises(jsonschema.ValidationError, match="fractio"):
        jsonschema.validate(bad_operator, schema)
