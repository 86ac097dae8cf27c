"""Reading and writing spec files: YAML in (`yaml.safe_load` only), a fully resolved YAML out.

Reading errors (a missing file, a YAML syntax error) are `SpecError`s like validation errors, so
every caller handles one exception; syntax errors are located as `<file>:<line>:<col>`.

    spec = load_spec("examples/quickstart.yaml")
    Path("run/spec.yaml").write_text(dump_spec(spec))   # every parameter explicit
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from flowforge.errors import SpecError
from flowforge.spec.models import ExperimentSpec
from flowforge.spec.resolve import validate_document

RESOLVED_HEADER = "# flowforge spec, resolved: every component's parameters are spelled out.\n"


def load_spec(source: str | os.PathLike[str]) -> ExperimentSpec:
    """Read, parse and validate the spec file `source`; raises `SpecError` on any problem."""
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([("", "no such file (check the path)")], str(path)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError([("", f"cannot read the spec: {err}")], str(path)) from None
    return parse_spec(text, str(path))


def parse_spec(text: str, source: str = "<string>") -> ExperimentSpec:
    """Parse and validate spec YAML; `source` names it in error messages."""
    return validate_document(read_yaml(text, source), source)


def read_yaml(text: str, source: str = "<string>") -> object:
    """`yaml.safe_load(text)`, with syntax errors as a `SpecError` located at file:line:col."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise SpecError([(where, f"YAML syntax error: {_problem(err)}")]) from None
    except yaml.YAMLError as err:
        raise SpecError([("", f"YAML error: {' '.join(str(err).split())}")], source) from None
    except RecursionError:  # the parser recurses once per level of nesting
        raise SpecError([("", "YAML nested too deeply to be a spec")], source) from None


def _problem(err: yaml.MarkedYAMLError) -> str:
    """The parser's problem, with its context ("while parsing a flow sequence") where it helps."""
    problem, context = err.problem or "", err.context or ""
    if not (problem and context):
        return problem or context or "invalid YAML"
    if problem.startswith("but "):  # "expected a single document in the stream, but found ..."
        return f"{context}, {problem}"
    return f"{problem} ({context})"


def dump_spec(spec: ExperimentSpec) -> str:
    """YAML of `spec` (as returned by `load_spec`: params resolved), which itself validates."""
    body = yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    return RESOLVED_HEADER + body
