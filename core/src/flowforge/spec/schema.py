"""JSON Schema of experiment specs: the pydantic structure plus every registered component's params.

Each component section accepts a bare registered name or `{name: <const>, params: <that
component's params schema>}`, so an editor (yaml-language-server) checks params too. Output is
deterministic (sorted keys, components in name order, LF line ends, trailing newline) so that
the committed files in `schemas/` can be compared exactly with freshly generated ones.

    write_schemas("schemas")          # what `flowforge schema --write` does
    stale_schemas("schemas")          # [] when the committed files are current
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from flowforge import registry
from flowforge.registry import Component, Registry
from flowforge.spec.models import ExperimentSpec
from flowforge.spec.sections import COMPONENT_SECTIONS, EVERY

DRAFT = "https://json-schema.org/draft/2020-12/schema"
REF = "#/$defs/"
EXPERIMENT = "experiment.schema.json"


def experiment_schema(reg: Registry | None = None) -> dict[str, Any]:
    """The JSON Schema of a spec file, with the components of `reg` (default: the current one)."""
    reg = reg or registry.current()
    schema = ExperimentSpec.model_json_schema()
    defs = schema["$defs"]
    for section in COMPONENT_SECTIONS:
        name = f"{section.kind}_component"
        base = defs[section.model.__name__]
        defs[name] = _kind_schema(section.kind, list(reg.components(section.kind)), base, defs)
        _point(_node(schema, section.path), REF + name)
    _prune(schema)
    schema["$schema"] = DRAFT
    schema["title"] = "flowforge experiment spec"
    return schema


def render(schema: dict[str, Any]) -> str:
    """The canonical text of a schema file: sorted keys, two-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate(reg: Registry | None = None) -> dict[str, str]:
    """Every schema file's name and text."""
    return {EXPERIMENT: render(experiment_schema(reg))}


def stale_schemas(directory: str | os.PathLike[str], reg: Registry | None = None) -> list[Path]:
    """The schema files under `directory` that are missing or differ from freshly generated ones."""
    root = Path(directory)
    return [
        root / name
        for name, text in generate(reg).items()
        if not (root / name).is_file() or (root / name).read_text(encoding="utf-8") != text
    ]


def write_schemas(directory: str | os.PathLike[str], reg: Registry | None = None) -> list[Path]:
    """Write every schema file under `directory` (created if needed); returns the paths."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generate(reg).items():
        (root / name).write_text(text, encoding="utf-8", newline="\n")
        written.append(root / name)
    return written


def _kind_schema(
    kind: str, components: list[Component], base: dict[str, Any], defs: dict[str, Any]
) -> dict[str, Any]:
    """A bare name of `kind`, or one `{name, params}` object per registered component."""
    if not components:
        missing = f"no {kind} is installed: install a plugin that provides one"
        return {"description": missing, "not": {}}
    by_name, variants = [], []
    for comp in components:
        params = _hoist(comp.params_schema(), f"{kind}.{comp.name}.", defs)
        params["description"] = f"parameters of {kind} {comp.name!r}"
        properties = copy.deepcopy(base["properties"])
        properties["name"] = {"const": comp.name, "description": comp.doc}
        properties["params"] = params
        needs_params = bool(params.get("required"))
        variants.append(
            {
                "additionalProperties": False,
                "description": comp.doc,
                "properties": properties,
                "required": ["name", "params"] if needs_params else ["name"],
                "title": f"{kind} {comp.name}",
                "type": "object",
            }
        )
        if not needs_params:
            by_name.append(comp.name)
    if by_name:
        described = f"a registered {kind} by name, with default parameters"
        variants.insert(0, {"description": described, "enum": by_name, "type": "string"})
    return {"anyOf": variants, "description": f"a registered {kind}: a name, or {{name, params}}"}


def _hoist(schema: dict[str, Any], prefix: str, defs: dict[str, Any]) -> dict[str, Any]:
    """Move the `$defs` of an embedded schema into `defs` under `prefix`, rewriting its refs."""
    own = schema.pop("$defs", {})
    renamed = _rename_refs({**schema, "$defs": own}, prefix)
    for name, sub in renamed.pop("$defs").items():
        defs[prefix + name] = sub
    return renamed


def _rename_refs(node: Any, prefix: str) -> Any:
    if isinstance(node, dict):
        return {
            k: REF + prefix + v.removeprefix(REF)
            if k == "$ref" and isinstance(v, str) and v.startswith(REF)
            else _rename_refs(v, prefix)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rename_refs(v, prefix) for v in node]
    return node


def _node(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """The schema node that validates the value at `path` (a field or a list item)."""
    node = schema
    for part in path:
        node = _object(schema, node)
        node = node["items"] if part == EVERY else node["properties"][part]
    return node


def _point(node: dict[str, Any], ref: str) -> None:
    """Make `node` validate with `ref`; an optional section (`X | None`) keeps its null option."""
    options = node.get("anyOf", [])
    if any(o.get("type") == "null" for o in options):
        node["anyOf"] = [o if o.get("type") == "null" else {"$ref": ref} for o in options]
    else:
        node["$ref"] = ref


def _object(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref`s and `X | None` unions to the schema of the object or array itself."""
    while True:
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].removeprefix(REF)]
        elif "anyOf" in node:
            (node,) = [m for m in node["anyOf"] if m.get("type") != "null"]
        else:
            return node


def _prune(schema: dict[str, Any]) -> None:
    """Drop the `$defs` that nothing reaches any more (the generic component reference)."""
    defs = schema["$defs"]
    used: set[str] = set()
    todo = [{k: v for k, v in schema.items() if k != "$defs"}]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(REF) and ref[len(REF) :] not in used:
                used.add(ref[len(REF) :])
                todo.append(defs[ref[len(REF) :]])
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    schema["$defs"] = {k: v for k, v in defs.items() if k in used}
