"""Malformed specs through the real CLI: exit status 2 and the offending location on stderr."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from flowforge.spec import validate_document

pytestmark = pytest.mark.usefixtures("toys")


def with_change(location: str, value: object = ..., **extra: object) -> Callable[[dict], dict]:
    """A change of the valid spec: the value at dotted `location` replaced (`...`: deleted)."""

    def change(valid: dict) -> dict:
        doc = copy.deepcopy(valid)
        *parents, last = location.split(".")
        node = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is ...:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        doc.update(extra)
        return doc

    return change


# (id, document or raw YAML text, substrings that stderr must contain)
CASES = [
    ("missing-name", with_change("name"), ["name: required key is missing"]),
    ("missing-data", with_change("data"), ["data: required key is missing"]),
    ("missing-path", with_change("path"), ["path: required key is missing"]),
    ("missing-model", with_change("model"), ["model: required key is missing"]),
    ("bad-name-pattern", with_change("name", "my run!"), ["name: String should match pattern"]),
    ("name-not-string", with_change("name", 12), ["name: Input should be a valid string"]),
    (
        "negative-seed",
        with_change("seed", -1),
        ["seed: Input should be greater than or equal to 0"],
    ),
    ("seed-wrong-type", with_change("seed", "abc"), ["seed: Input should be a valid integer"]),
    ("negative-lr", with_change("train.lr", -0.1), ["train.lr: Input should be greater than 0"]),
    (
        "lr-not-number",
        with_change("train.lr", "fast"),
        ["train.lr: Input should be a valid number"],
    ),
    (
        "lr-nan",
        "name: a\ndata: toy_ring\npath: cond_ot\nmodel: toy_mlp\ntrain: {lr: .nan}\n",
        ["train.lr"],
    ),
    ("unknown-train-key", with_change("train.lrr", 0.1), ["train.lrr: unknown key", "'lr'"]),
    ("unknown-top-key", with_change("sampler", {"nfe": 4}), ["sampler: unknown key", "'sample'"]),
    (
        "nfe-zero",
        with_change("sample.nfe", 0),
        ["sample.nfe: Input should be greater than or equal to 1"],
    ),
    ("t_span-length", with_change("sample.t_span", [0, 0.5, 1]), ["sample.t_span"]),
    (
        "t_span-range",
        with_change("sample.t_span", [0, 2]),
        ["sample.t_span[1]: Input should be less"],
    ),
    (
        "t_span-equal",
        with_change("sample.t_span", [0.5, 0.5]),
        ["sample.t_span: Value error, t0 and t1"],
    ),
    (
        "bad-time-grid",
        with_change("sample.time_grid", "cosine"),
        ["sample.time_grid: Value error, 'cosine' is not a time grid"],
    ),
    (
        "unknown-dataset",
        with_change("data", "toy_blob"),
        ["data.name: unknown dataset 'toy_blob'", "'toy_blobs'"],
    ),
    (
        "unknown-path",
        with_change("path", "cond_ott"),
        ["path.name: unknown path 'cond_ott'", "'cond_ot'"],
    ),
    (
        "unknown-model",
        with_change("model.name", "toy_mpl"),
        ["model.name: unknown model", "'toy_mlp'"],
    ),
    (
        "unknown-solver",
        with_change("sample.solver", "rk5"),
        ["sample.solver.name: unknown solver", "'rk4'"],
    ),
    (
        "noise-drawing-solver-on-an-ot-coupled-model",
        with_change("train.coupling", "exact_ot", sample={"solver": "euler_maruyama"}),
        ["sample.solver: 'euler_maruyama' draws noise", "not 'exact_ot'"],
    ),
    (
        "unknown-guidance",
        with_change("guidance", ["toy_cgf"]),
        ["guidance[0].name: unknown guidance", "'toy_cfg'"],
    ),
    (
        "unknown-metric",
        with_change("evaluate.metrics.1", "toy_enrgy"),
        ["evaluate.metrics[1].name: unknown metric"],
    ),
    (
        "unknown-param",
        with_change("path", {"name": "vp_linear", "params": {"beta_maxx": 3}}),
        ["path.params.beta_maxx: unknown key", "'beta_max'"],
    ),
    (
        "unknown-model-param",
        with_change("model.params", {"hiden": 3}),
        ["model.params.hiden: unknown key", "'hidden'"],
    ),
    (
        "param-out-of-range",
        with_change("data.params.n", 0),
        ["data.params.n: Input should be greater than or equal to 1"],
    ),
    (
        "model-param-literal",
        with_change("model.params", {"activation": "tanh"}),
        ["model.params.activation"],
    ),
    (
        "params-not-mapping",
        with_change("data.params", [1, 2]),
        ["data.params: Input should be a valid dictionary"],
    ),
    (
        "params-for-paramless",
        with_change("data", {"name": "toy_ring", "params": {"r": 1}}),
        ["data.params: dataset 'toy_ring' takes no parameters"],
    ),
    (
        "required-param-missing",
        with_change("guidance", ["toy_target"]),
        ["guidance[0].params.target: required key is missing"],
    ),
    (
        "component-not-name-or-mapping",
        with_change("path", 5),
        ["path: Value error, expected a registered name"],
    ),
    (
        "unknown-ref-key",
        with_change("path", {"name": "cond_ot", "parms": {}}),
        ["path.parms: unknown key", "'params'"],
    ),
    (
        "guidance-not-list",
        with_change("guidance", "toy_cfg"),
        ["guidance: Input should be a valid list"],
    ),
    (
        "bad-prediction",
        with_change("model.prediction", "epsilon"),
        ["model.prediction: Input should be"],
    ),
    ("keep-zero", with_change("output.keep_checkpoints", 0), ["output.keep_checkpoints"]),
    (
        "top-level-list",
        "- name: a\n- data: b\n",
        ["expected a mapping of the top-level keys (name, seed, data"],
    ),
    ("top-level-scalar", "just a string\n", ["expected a mapping of the top-level keys", "str"]),
    ("empty-file", "", ["the spec is empty"]),
    ("only-comments", "# nothing here\n", ["the spec is empty"]),
    ("deep-nesting", "name: " + "[" * 3000 + "]" * 3000, ["nested too deeply"]),
]


@pytest.mark.parametrize(("doc", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_spec_exits_2_naming_the_field(cli, write_spec, valid_doc, doc, expected):
    code, out, err = cli("validate", write_spec(doc if isinstance(doc, str) else doc(valid_doc)))
    assert code == 2
    assert "ok:" not in out
    for text in expected:
        assert text in err


YAML_ERRORS = [
    ("unclosed-flow", "name: a\ndata: [toy_ring\npath: cond_ot\n", ":3:5: YAML syntax error"),
    ("tab-indent", "name: a\ndata:\n\tname: toy_ring\n", ":3:1: YAML syntax error"),
    ("bad-mapping", "name: a\n  data: b\n", ":2:7: YAML syntax error"),
    ("two-documents", "name: a\n---\nname: b\n", ":2:1: YAML syntax error"),
    ("python-tag", "name: !!python/object:os.system a\n", ":1:7: YAML syntax error"),
]


@pytest.mark.parametrize(
    ("text", "where"), [c[1:] for c in YAML_ERRORS], ids=[c[0] for c in YAML_ERRORS]
)
def test_yaml_syntax_error_gives_file_line_col(cli, write_spec, text, where):
    path = write_spec(text)
    code, _, err = cli("validate", path)
    assert code == 2
    assert f"{path}{where}" in err


def test_valid_spec_exits_0(cli, write_spec, valid_doc):
    path = write_spec(valid_doc)
    assert cli("validate", path) == (0, f"ok: {path}\n", "")


def test_every_problem_of_both_stages_is_reported(cli, write_spec, valid_doc):
    change = with_change("train.lr", -1.0, path="cond_ott", sample={"solver": "rk5", "nfe": 0})
    code, _, err = cli("validate", write_spec(change(valid_doc)))
    assert code == 2
    assert "4 problems" in err
    for location in ("train.lr:", "path.name:", "sample.nfe:", "sample.solver.name:"):
        assert location in err


def test_stage_two_checks_sound_sections_when_others_fail(cli, write_spec, valid_doc):
    change = with_change("train.lr", -1.0, sample={"solver": "rk5"})
    code, _, err = cli("validate", write_spec(change(valid_doc)))
    assert code == 2
    assert "train.lr:" in err and "sample.solver.name: unknown solver 'rk5'" in err


def test_several_files_are_all_checked(cli, write_spec, valid_doc):
    good = write_spec(valid_doc, "good.yaml")
    bad = write_spec(with_change("seed", -1)(valid_doc), "bad.yaml")
    code, out, err = cli("validate", bad, good, good.parent / "missing.yaml")
    assert code == 2
    assert out == f"ok: {good}\n"
    assert f"{bad}: seed:" in err
    assert "missing.yaml: <root>: no such file" in err


def test_a_directory_is_reported_not_raised(cli, tmp_path):
    code, _, err = cli("validate", tmp_path)
    assert code == 2
    assert "cannot read the spec" in err


def test_no_file_given_is_a_usage_error(cli):
    code, _, err = cli("validate")
    assert code == 2
    assert "Missing argument" in err


def _flowforge(*args: object) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("flowforge")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "flowforge"]
    env = {**os.environ, "FLOWFORGE_PLUGINS": ""}  # core only, whatever else is installed
    return subprocess.run(
        [*command, *map(str, args)], capture_output=True, text=True, env=env, timeout=120
    )


def test_installed_script_reports_every_file(write_spec, valid_doc):
    change = with_change("sample.solver", "rk5", data="no_such_data")
    semantic = write_spec(change(valid_doc), "semantic.yaml")
    syntax = write_spec("name: a\ndata: [x\n", "syntax.yaml")
    result = _flowforge("validate", semantic, syntax)
    assert result.returncode == 2
    assert "sample.solver.name: unknown solver 'rk5'. Did you mean 'rk4'?" in result.stderr
    assert "data.name: unknown dataset 'no_such_data'" in result.stderr
    assert f"{syntax}:3:1: YAML syntax error" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "coupling, solver",
    [
        ("exact_ot", {"name": "euler_maruyama", "params": {"eta": 0.0}}),
        ("exact_ot", "dpm_solver_pp"),
        ("independent", "euler_maruyama"),
    ],
)
def test_a_score_reading_solver_needs_only_an_independent_coupling(valid_doc, coupling, solver):
    doc = with_change("train.coupling", coupling, sample={"solver": solver})(valid_doc)
    assert validate_document(doc).sample.solver.name == (
        solver if isinstance(solver, str) else solver["name"]
    )
