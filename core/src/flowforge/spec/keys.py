"""Valid keys at a location of a spec, so that an "unknown key" error can name the right one.

model_at(ExperimentSpec, ("sample", "solver"))   # ComponentRef
with_hint("unknown key", "lrr", ["lr", "steps"])  # "unknown key; did you mean 'lr'? ..."
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel


def _unwrap(tp: Any) -> Any:
    """Strip `Annotated[...]` and `X | None` so that only the container or model is left."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def model_at(root: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at `loc`, or None where no model does.

    `loc` is a pydantic error location: field names, and list indices as ints.
    """
    tp: Any = root
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(part, int) and get_origin(tp) is list:
            tp = get_args(tp)[0]
        elif isinstance(part, str) and isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(part)
            if field is None:
                return None
            tp = field.annotation
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def with_hint(message: str, key: object, valid: Iterable[str]) -> str:
    """`message` about the unknown `key`, plus close matches among `valid` and the full list."""
    valid = sorted(valid)
    if not valid:
        return message
    close = difflib.get_close_matches(str(key), valid, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ";"
    return f"{message}{hint} valid keys here: {', '.join(valid)}"
