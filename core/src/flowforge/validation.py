"""Turn pydantic validation errors into `SpecError`s with dotted locations and readable messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from flowforge.errors import SpecError


def dotted(loc: Sequence[Any]) -> str:
    """`('train', 'lr')` -> `train.lr`; list indices become `[i]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return "unknown key (remove it or check its spelling)"
    if kind == "missing" or kind == "missing_keyword_argument":
        return "required key is missing"
    msg = err.get("msg", "invalid value")
    if "input" in err and kind not in ("missing",):
        msg += f" (got {_short(err['input'])})"
    return msg


def spec_error(err: ValidationError, prefix: str = "", source: str | None = None) -> SpecError:
    """Every error of `err` as a `SpecError` issue, located under `prefix`."""
    issues = []
    for item in err.errors(include_url=False):
        loc = dotted(item.get("loc", ()))
        if prefix:
            loc = f"{prefix}.{loc}" if loc else prefix
        issues.append((loc, _message(item)))
    return SpecError(issues, source)
